"""The top of a supervision tree: :class:`RootSupervisor`, :class:`SupervisionTree` (a
tree a service owns and stops), and the process-wide default tree behind
:func:`root_supervisor`, stopped at interpreter exit."""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger
from actorcluster.errors import UsageError
from actorcluster.supervisors._actor import _Link, join_actor, start_linked
from actorcluster.supervisors._proxy import SupervisorProxy, supervisor_proxy
from actorcluster.supervisors._spec import Backoff, ChildSpec, Strategy
from actorcluster.supervisors._supervisor import Supervisor

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from actorcluster.observe.bus import Subscription
    from actorcluster.supervisors._clock import Clock

__all__ = ["RootSupervisor", "SupervisionTree", "root_supervisor", "stop_root_supervisor"]

log = get_logger(__name__)

_ROOT_BACKOFF = Backoff()


class RootSupervisor(Supervisor):
    """The supervisor at the top of a tree: one_for_one, with a generous intensity
    (100 restarts in 10 s) and the default :class:`Backoff` between restarts."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        name: str = "root",
        max_restarts: int = 100,
        period: float = 10.0,
        backoff: Backoff | None = _ROOT_BACKOFF,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            name,
            Strategy.ONE_FOR_ONE,
            children,
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
            clock=clock,
        )


class SupervisionTree:
    """A supervision tree a service owns: start it, add children, stop it.

    After :meth:`stop` nothing of the tree is left: every actor stopped and out of
    ``pykka.ActorRegistry``, every thread ended (unless a child overran its shutdown
    timeout: Python cannot kill a thread). Trees can be created and stopped any
    number of times in one process::

        with SupervisionTree("service") as tree:
            tree.proxy().start_child(ChildSpec("w", Worker.start)).get(timeout=5)

    Args:
        name: the root supervisor's name.
        children: started in order by :meth:`start`.
        max_restarts: as for :class:`RootSupervisor`.
        period: as for :class:`RootSupervisor`.
        backoff: as for :class:`RootSupervisor`.
        clock: as for :class:`RootSupervisor`.
        shutdown_timeout: default seconds :meth:`stop` waits for the whole tree.
    """

    def __init__(
        self,
        name: str = "root",
        children: Sequence[ChildSpec] = (),
        *,
        max_restarts: int = 100,
        period: float = 10.0,
        backoff: Backoff | None = _ROOT_BACKOFF,
        clock: Clock | None = None,
        shutdown_timeout: float = 60.0,
    ) -> None:
        self._name = name
        self._children = tuple(children)
        self._options: dict[str, Any] = {
            "max_restarts": max_restarts,
            "period": period,
            "backoff": backoff,
            "clock": clock,
        }
        self._shutdown_timeout = shutdown_timeout
        self._lock = threading.Lock()
        self._ref: pykka.ActorRef[RootSupervisor] | None = None
        self._link: _Link | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else "stopped"
        return f"<SupervisionTree {self._name} {state}>"

    def __enter__(self) -> SupervisionTree:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> pykka.ActorRef[RootSupervisor]:
        """Start the root supervisor and its children (in order); idempotent.

        Raises:
            Exception: whatever a child's start raised (nothing is left running).
        """
        with self._lock:
            if self._ref is not None and self._ref.is_alive():
                return self._ref
            name, children, options = self._name, self._children, self._options
            ref, link = start_linked(
                lambda: RootSupervisor.start(children, name=name, **options),
                parent=None,
                child_id=name,
            )
            self._ref, self._link = ref, link
            return ref

    def stop(self, timeout: float | None = None) -> None:
        """Stop the tree (children in reverse order) and wait for its threads; idempotent."""
        with self._lock:
            ref = self._ref
        if ref is None:
            return
        timeout = self._shutdown_timeout if timeout is None else timeout
        deadline = Deadline(timeout)
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            log.warning("supervisor.tree.stop_timeout", supervisor=self._name, timeout=timeout)
            return
        join_actor(ref, timeout=deadline.remaining(0.1))

    @property
    def ref(self) -> pykka.ActorRef[RootSupervisor]:
        """The root supervisor's ref.

        Raises:
            UsageError: the tree was never started.
        """
        if self._ref is None:
            raise UsageError(f"supervision tree {self._name} is not started")
        return self._ref

    def proxy(self) -> SupervisorProxy:
        """A typed proxy to the root supervisor."""
        return supervisor_proxy(self.ref)

    def is_alive(self) -> bool:
        """Whether the root supervisor is running."""
        return self._ref is not None and self._ref.is_alive()

    def events(self, maxsize: int = 10_000) -> Subscription:
        """A subscription to every event of the process's runtimes, tasks, processes,
        tunnels and clusters (see :mod:`actorcluster.observe`)."""
        from actorcluster.observe.bus import subscribe

        return subscribe(maxsize=maxsize)

    def snapshot(self) -> dict[str, Any]:
        """This tree as plain, JSON-ready data (see :func:`actorcluster.observe.snapshot`)."""
        from actorcluster.observe.snapshots import take_snapshot

        return take_snapshot(self.ref)

    @property
    def failure(self) -> Exception | None:
        """Why the root stopped, if not by :meth:`stop`: e.g. a
        :class:`~actorcluster.errors.SupervisorGaveUpError` once it gave up."""
        return None if self._link is None else self._link.exit_error


class _Default:
    """The process-wide default tree and whether the exit hooks are registered."""

    lock = threading.Lock()
    tree: SupervisionTree | None = None
    hooks_registered = False


def root_supervisor() -> pykka.ActorRef[RootSupervisor]:
    """The default tree's root supervisor, started on first use (again after it stopped).

    It is stopped cleanly at interpreter exit (before non-daemon threads are joined).
    """
    with _Default.lock:
        _register_exit_hooks()
        tree = _Default.tree
        if tree is None or not tree.is_alive():
            if tree is not None:
                tree.stop()
            tree = _Default.tree = SupervisionTree("root")
        return tree.start()


def stop_root_supervisor(timeout: float | None = None) -> None:
    """Stop the default tree, if it runs; the next :func:`root_supervisor` starts anew."""
    with _Default.lock:
        tree, _Default.tree = _Default.tree, None
    if tree is not None:
        tree.stop(timeout)


def _register_exit_hooks() -> None:
    if _Default.hooks_registered:
        return
    _Default.hooks_registered = True
    # threading's hooks run before non-daemon threads are joined; atexit's after.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # already shutting down
            register(_stop_at_exit)
    atexit.register(_stop_at_exit)


def _stop_at_exit() -> None:
    with contextlib.suppress(Exception):  # never let shutdown trouble mask the exit
        stop_root_supervisor(timeout=10.0)
