"""SupervisedActor: the pykka actor a supervisor can start, watch and restart.

pykka reports an actor's end through hooks that each cover one way of ending:

* ``on_start`` raised: pykka logs it and stops the actor; neither ``on_stop`` nor
  ``on_failure`` runs;
* a message sent with ``tell`` raised: ``on_failure`` runs, the actor stops;
* ``stop()``: ``on_stop`` runs;
* a message sent with ``ask`` raised: the caller gets the exception, the actor lives on.

A :class:`SupervisedActor` wraps its own three hooks (per instance, in ``__init__``),
so whatever a subclass does in its overrides: the outcome of ``on_start`` is handed to
whoever is waiting to start it (that is what makes a supervisor's start synchronous,
like OTP's ``start_link``), and after ``on_stop``/``on_failure`` the supervisor is told
:class:`~actorcluster.messages.supervision.ChildExited`, normal or with the exception.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, NoReturn

import pykka
from pykka.messages import ProxyCall

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger, quiet_expected_actor_failures
from actorcluster.errors import ConfigurationError
from actorcluster.messages.supervision import ChildExited
from actorcluster.supervisors._flag import Flag
from actorcluster.supervisors._pool import PooledActor
from actorcluster.supervisors._registry import unregister

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["SupervisedActor", "join_actor"]

log = get_logger(__name__)
quiet_expected_actor_failures()


class _Link:
    """Ties one actor to whoever started it: parent, child id, start outcome, its end."""

    __slots__ = (
        "__weakref__",
        "actor_class",
        "actor_urn",
        "child_id",
        "exit_error",
        "exit_handled",
        "finished",
        "parent",
        "report_start_failure",
        "start_error",
        "started",
    )

    def __init__(self, parent: pykka.ActorRef[Any] | None, child_id: str) -> None:
        self.parent = parent
        self.child_id = child_id
        self.started: threading.Event = Flag()
        self.start_error: Exception | None = None
        self.exit_error: Exception | None = None
        self.exit_handled = False
        """Its parent handled its exit before it knew the child (see ``_on_adopt``)."""
        self.actor_urn: str | None = None
        self.actor_class: type[Any] | None = None
        self.finished: threading.Event | None = None
        """The actor's :attr:`~PooledActor.actor_finished`, once it exists."""
        self.report_start_failure = False
        """Tell the parent a failed ``on_start`` as an exit (nobody waits for the start)."""


_local = threading.local()
_links: weakref.WeakValueDictionary[str, _Link] = weakref.WeakValueDictionary()


def _claim(actor: SupervisedActor) -> _Link:
    """The link prepared by :func:`start_linked` on this thread, or a parentless one."""
    link: _Link | None = getattr(_local, "link", None)
    if link is None or link.actor_urn is not None:
        link = _Link(None, type(actor).__name__)
    link.actor_urn = actor.actor_urn
    link.actor_class = type(actor)
    link.finished = actor.actor_finished
    _links[actor.actor_urn] = link
    return link


def start_linked(
    start: Callable[[], pykka.ActorRef[Any]],
    *,
    parent: pykka.ActorRef[Any] | None,
    child_id: str,
    wait: bool = True,
) -> tuple[pykka.ActorRef[Any], _Link]:
    """Call ``start()`` and wait until the actor it started finished ``on_start``.

    With ``wait`` False it returns once the actor exists: a failing ``on_start`` then
    reaches the parent as the child's abnormal exit instead.

    Raises:
        ConfigurationError: ``start`` did not start a :class:`SupervisedActor`.
        Exception: whatever ``start()`` or (waiting) the actor's ``on_start`` raised.
    """
    link = _Link(parent, child_id)
    link.report_start_failure = not wait
    previous = getattr(_local, "link", None)
    _local.link = link
    try:
        ref = start()
    except BaseException:
        _stop_claimed(link)
        raise
    finally:
        _local.link = previous
    if not isinstance(ref, pykka.ActorRef) or ref.actor_urn != link.actor_urn:
        _stop_claimed(link)
        msg = (
            f"ChildSpec.start of {child_id!r} must start a SupervisedActor and return "
            f"its ref, got {ref!r}"
        )
        raise ConfigurationError(msg)
    if not wait:
        return ref, link
    link.started.wait()
    if link.start_error is not None:
        if link.finished is not None:
            link.finished.wait(timeout=1.0)
        raise link.start_error
    return ref, link


def _stop_claimed(link: _Link) -> None:
    ref = pykka.ActorRegistry.get_by_urn(link.actor_urn) if link.actor_urn else None
    if ref is not None:
        ref.stop(block=False)


def join_actor(ref: pykka.ActorRef[Any], timeout: float | None = None) -> bool:
    """Wait until the actor has stopped and handled its last message.

    For a :class:`SupervisedActor` this means its exit notification has been sent;
    for other actors it only waits for the stopped flag.

    Returns:
        True if it ended within ``timeout`` seconds.
    """
    deadline = Deadline(timeout)
    left = deadline.timeout
    link = _links.get(ref.actor_urn)
    if not ref.actor_stopped.wait(left()):
        return False
    if link is None or link.finished is None:
        return True  # not a SupervisedActor, or long gone
    if not link.started.wait(left()):
        return False
    return link.finished.wait(left())


class SupervisedActor(PooledActor):
    """Base class of every supervised actor (workers and supervisors alike).

    Contract for subclasses:

    * call ``super().__init__()`` first in ``__init__`` (it is what links the actor
      to the supervisor starting it); keep ``__init__`` to storing configuration;
    * acquire in ``on_start`` (if it raises, the start fails with that exception and
      pykka calls neither ``on_stop`` nor ``on_failure``: clean up your partial state
      before raising); release in :meth:`on_exit`, which the base ``on_stop`` and
      ``on_failure`` both call;
    * call ``super()`` in ``on_start``, ``on_stop``, ``on_failure``, and hand
      messages you do not handle to ``super().on_receive(message)`` (it logs
      ``actor.unknown_message``);
    * to be restarted, crash: raise from a message sent with ``tell``, e.g. with
      :meth:`crash`. Raising while answering an ``ask`` only fails that ask.

    It runs on the shared actor pool (:class:`~actorcluster.supervisors._pool.PooledActor`):
    it holds a thread only while it has messages, and pool threads are daemon threads,
    so a forgotten actor never blocks interpreter exit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._link = _claim(self)
        self.created_at = time.time()
        """When this incarnation was made (seconds since the epoch; snapshots' since)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._link.child_id}>"

    @property
    def child_id(self) -> str:
        """The id this actor was started under (its class name when unsupervised)."""
        return self._link.child_id

    @property
    def supervisor_ref(self) -> pykka.ActorRef[Any] | None:
        """The supervisor that started this actor, or None."""
        return self._link.parent

    def on_start(self) -> None:
        """Acquire resources; subclasses call ``super().on_start()``."""

    def on_stop(self) -> None:
        """Release resources (:meth:`on_exit`); overrides call ``super().on_stop()``."""
        self.on_exit(None)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Release after a crash (:meth:`on_exit`); overrides call ``super().on_failure``."""
        self.on_exit(exception_value)

    def on_exit(self, error: BaseException | None) -> None:
        """Release what ``on_start`` acquired: runs once, whether the actor stopped
        (``error`` None) or crashed (``error`` the exception)."""

    def on_receive(self, message: Any) -> Any:
        """Log a message nobody handled (``actor.unknown_message``) and return None."""
        log.warning("actor.unknown_message", actor=repr(self), message=type(message).__name__)
        return None

    def crash(self, error: Exception) -> None:
        """Make this actor crash with ``error`` once it reaches the message.

        Tells the actor a message whose handling raises ``error``: pykka then runs
        ``on_failure`` and stops the actor, and its supervisor sees an abnormal exit.
        Works from inside the actor and, through a proxy, from outside.
        """
        self.actor_ref.tell(ProxyCall(attr_path=("_crash_now",), args=(error,), kwargs={}))

    def _crash_now(self, error: Exception) -> NoReturn:
        raise error

    # --- around the hooks: whatever the subclass's overrides do, the starter learns
    # --- how the start went and the parent learns how the actor ended

    def _actor_loop_setup(self) -> None:
        link = self._link
        try:
            self.on_start()
        except Exception as exc:
            link.start_error = link.exit_error = exc
            if link.report_start_failure:
                self._exited(exc)
            self._handle_failure(*sys.exc_info())
        finally:
            link.started.set()

    def _stop(self) -> None:
        """Stop now (pykka's, with the exit told to the parent after ``on_stop``)."""
        unregister(self.actor_ref)
        self.actor_stopped.set()
        try:
            self.on_stop()
        except Exception as exc:
            self._exited(exc)
            self._handle_failure(*sys.exc_info())
        else:
            self._exited(None)

    def _crashed(self, exc_info: Any) -> None:
        value = exc_info[1]
        error = value if isinstance(value, Exception) else RuntimeError(value)
        try:
            super()._crashed(exc_info)
        finally:
            self._exited(error)

    def _exited(self, error: Exception | None) -> None:
        link = self._link
        if error is not None and link.exit_error is None:
            link.exit_error = error
        if link.parent is None:
            return
        message = ChildExited(
            child_id=link.child_id,
            actor_urn=self.actor_urn,
            normal=error is None,
            reason=None if error is None else repr(error),
            error=error,
        )
        with contextlib.suppress(pykka.ActorDeadError):
            link.parent.tell(message)
