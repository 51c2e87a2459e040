"""RuntimeHandle: one runtime's engine, below the ``Runtime`` facade.

A handle starts the runtime's supervision subtree (connection, agent, tasks, tunnels)
under a parent supervisor, and offers what the facades need of one runtime: start a
task, open or close a tunnel, start a supervised process, read its state and events,
and reach the typed agent client for host requests. The races with supervisor restarts
(a reconnect replaces the task and tunnel supervisors) are handled here, once, so
``Runtime``, ``RuntimeGroup`` and the cluster coordinators fan out over handles without
knowing about them.

It is the one way into a runtime for the rest of the library: groups, clusters, the
CLI and the benchmarks reach it as ``runtime.handle`` and use only its public methods
(``tests/test_private_access.py`` checks that no module outside ``runtimes/`` touches a
private member of a runtime).

The hot path stays off actor inboxes: a task's actor reaches the agent client directly
through the runtime's :class:`~actorcluster.actors.context.RuntimeContext`, and starting
a task never waits on a supervisor (:func:`~actorcluster.supervisors.start_temporary`).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import ASK_TIMEOUT, START_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.actors import (
    RuntimeContext,
    TaskActor,
    runtime_supervisor_spec,
    tunnel_child_spec,
)
from actorcluster.errors import (
    ActorClusterError,
    FutureTimeoutError,
    HostUnreachableError,
    InvalidRuntimeError,
    UsageError,
)
from actorcluster.observe import bus as observe
from actorcluster.runtimes.supervised import supervise_process
from actorcluster.supervisors import (
    ChildSpec,
    Restart,
    root_supervisor,
    start_temporary,
    supervisor_proxy,
)

if TYPE_CHECKING:
    from actorcluster.actors import RuntimeOptions, TaskRun
    from actorcluster.actors.process import ProcessSpec
    from actorcluster.actors.process_tree import RestartPolicy
    from actorcluster.futures import ActorFuture
    from actorcluster.observe.bus import Subscription
    from actorcluster.remote import AgentClient
    from actorcluster.runtimes.supervised import SupervisedProcess
    from actorcluster.tunnels import TunnelSpec

__all__ = ["ASK_TIMEOUT", "START_TIMEOUT", "RuntimeHandle"]

log = get_logger(__name__)

_ids = itertools.count(1)


class RuntimeHandle:
    """One runtime's supervision subtree, and the operations on it.

    Args:
        options: the validated options (see :func:`actorcluster.runtimes.options.build_options`).
        supervisor: the parent to start the subtree under; None: the library's root tree.
    """

    def __init__(self, options: RuntimeOptions, supervisor: pykka.ActorRef[Any] | None) -> None:
        self.options = options
        self.host = options.host
        self.context = RuntimeContext(options)
        self._parent = supervisor if supervisor is not None else root_supervisor()
        self._child_id = f"runtime:{options.host}:{next(_ids)}"
        self._task_ids = itertools.count(1)
        self._stopped = False

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("ready" if self.context.ready else "reconnecting")
        return f"<RuntimeHandle {self.host} {state}>"

    # --- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the subtree and wait until the agent is up and the working dir exists.

        Raises:
            InvalidRuntimeError: the host cannot be used (subclasses say why).
            PathCreationError: the working directory could not be created.
        """
        self.start_async()
        self.wait_started(timeout)

    def start_async(self) -> ActorFuture[None]:
        """Start the subtree without waiting for it to come up; the future tells when
        it did (or why not). Connecting happens on the actor pool, so starting many
        runtimes one after another connects them all at once."""
        spec = runtime_supervisor_spec(self.context, self._child_id)
        supervisor_proxy(self._parent).start_child(spec).get(timeout=ASK_TIMEOUT)
        return self.context.startup

    def wait_started(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for :meth:`start_async`'s outcome; on failure the subtree is gone.

        Raises:
            InvalidRuntimeError: the host cannot be used (subclasses say why), or it did
                not come up within ``timeout`` (the start is abandoned).
            PathCreationError: the working directory could not be created.
        """
        try:
            self.context.startup.get(timeout=timeout)
        except FutureTimeoutError:
            self.stop()
            reason = f"it did not come up within {timeout:g} s"
            raise InvalidRuntimeError(self.host, reason) from None
        except Exception as exc:
            raise self.start_failed(exc) from None

    async def started(self) -> None:
        """Await :meth:`start_async`'s outcome without blocking the event loop; if the
        awaiting coroutine is cancelled, the start is abandoned (nothing is left).

        Raises:
            InvalidRuntimeError, PathCreationError: as :meth:`wait_started`.
        """
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        try:
            await self.context.startup
        except asyncio.CancelledError:
            await asyncio.to_thread(self.stop)
            raise
        except Exception as exc:
            raise self.start_failed(exc) from None

    def start_failed(self, error: Exception) -> Exception:
        """The error to raise for a failed start (the subtree is gone already): one
        short error naming the host and why, never a chain of internal re-raises."""
        self._stopped = True
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError):  # its spec too
            supervisor_proxy(self._parent).delete_child(self._child_id).get(timeout=ASK_TIMEOUT)
        if isinstance(error, HostUnreachableError) and not isinstance(error, InvalidRuntimeError):
            return InvalidRuntimeError(self.host, str(error))
        return error.with_traceback(None)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped

    @property
    def working_dir(self) -> str:
        """The working directory on the host (absolute)."""
        working_dir = self.context.working_dir
        assert working_dir is not None, "the runtime has not started"
        return working_dir

    def check_running(self) -> None:
        """Raise if the runtime was stopped.

        Raises:
            UsageError: it was (``cleanup()`` was called).
        """
        if self._stopped:
            raise UsageError(f"runtime {self.host} was cleaned up; create a new Runtime")

    def stop(self) -> None:
        """Stop every task and tunnel, stop the agent (which kills what it started and
        removes the temporary working directory), and close the connection."""
        if self._stopped:
            return
        self._stopped = True
        self.context.cleanup_requested = True
        self.context.stopping = True
        # The tree may already be gone (interpreter exit), or the child with it.
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError):
            parent = supervisor_proxy(self._parent)
            parent.terminate_child(self._child_id).get(timeout=ASK_TIMEOUT)
            # Its spec's closure holds the context, the agent session and the transports.
            parent.delete_child(self._child_id).get(timeout=ASK_TIMEOUT)
        self.context.close()

    # --- the agent ------------------------------------------------------------------

    def client(self, timeout: float | None = None) -> AgentClient:
        """The agent client, waiting up to ``timeout`` (default: the runtime's
        ``reconnect_wait``) for a reconnect under way.

        Raises:
            UsageError: the runtime was stopped.
            HostUnreachableError: no agent came in time.
        """
        self.check_running()
        return self.context.agent(timeout)

    # --- tasks ----------------------------------------------------------------------

    def start_task(self, run: TaskRun) -> None:
        """Start a task's actor; its future tells how it ended. Never waits on the task
        or on a supervisor.

        Raises:
            UsageError: the runtime was stopped.
            HostUnreachableError: no task supervisor came within ``reconnect_wait``.
        """
        self.check_running()
        context = self.context
        spec = ChildSpec(
            id=f"{run.task.name}#{next(self._task_ids)}",
            start=lambda: TaskActor.start(context, run),
            restart=Restart.TEMPORARY,
            shutdown_timeout=5.0,
        )
        for _ in range(3):
            supervisor = context.task_supervisor()
            try:
                start_temporary(supervisor.actor_ref, spec)
            except pykka.ActorDeadError:
                continue  # replaced by a reconnect just now: the next one takes it
            return
        raise HostUnreachableError(self.host, "the runtime kept reconnecting")

    # --- tunnels --------------------------------------------------------------------

    def open_tunnel(self, spec: TunnelSpec) -> None:
        """Start a tunnel's actor; fails if opening it fails. Once open, the tunnel is
        re-opened after every reconnect until :meth:`close_tunnel`.

        Raises:
            UsageError: the runtime was stopped, or a tunnel with this key is open.
            PortInUseError, RemoteError, HostUnreachableError: opening failed.
        """
        self.check_running()
        if not self.context.add_tunnel(spec):
            raise UsageError(f"tunnel {spec.key} is already open on {self.host}")
        try:
            self._start_tunnel(spec)
        except BaseException:
            self.context.remove_tunnel(spec.key)
            raise

    def _start_tunnel(self, spec: TunnelSpec) -> None:
        child = tunnel_child_spec(self.context, spec, strict=True)
        for _ in range(3):
            proxy = supervisor_proxy(self.context.tunnel_supervisor())
            try:
                proxy.start_child(child).get(timeout=ASK_TIMEOUT)
            except pykka.ActorDeadError:
                continue  # the supervisor was being restarted (a reconnect): ask the next
            except UsageError:
                children = proxy.which_children().get(timeout=ASK_TIMEOUT)
                if any(info.id == spec.key for info in children):
                    return  # a restarted supervisor already opened it from the registry
                raise
            return
        raise HostUnreachableError(self.host, "the runtime kept reconnecting")

    def close_tunnel(self, key: str) -> None:
        """Forget the tunnel, then stop its actor if a supervisor runs it now (its
        listener and every connection through it close at once)."""
        self.context.remove_tunnel(key)
        try:
            proxy = supervisor_proxy(self.context.tunnel_supervisor(timeout=0.0))
            proxy.terminate_child(key).get(timeout=ASK_TIMEOUT)
            proxy.delete_child(key).get(timeout=ASK_TIMEOUT)
        except (HostUnreachableError, UsageError, pykka.ActorDeadError):
            return  # not running now; a supervisor starting meanwhile drops it
        log.debug("tunnel.stopped", host=self.host, key=key)

    # --- what groups, clusters and the CLI read and start ----------------------------

    @property
    def is_local(self) -> bool:
        """Whether the agent runs as a local subprocess (the ``localhost`` runtime: no
        SSH, this machine's loopback and files)."""
        return self.options.is_local

    @property
    def address(self) -> str:
        """The address its connection dials (the SSH target's host name, after
        ``~/.ssh/config``); the host as named for the ``localhost`` runtime."""
        target = self.options.target
        return target.hostname if target is not None and target.hostname else self.host

    @property
    def ready(self) -> bool:
        """Whether the agent is up right now: not stopped, not reconnecting. Never waits."""
        return not self._stopped and self.context.ready

    @property
    def state(self) -> str:
        """``"ready"``, ``"reconnecting"`` or ``"stopped"`` (by :meth:`stop`, or with
        the supervision tree above it)."""
        if self._stopped or self.context.stopping:
            return "stopped"
        return "ready" if self.context.ready else "reconnecting"

    @property
    def running_task_count(self) -> int:
        """How many tasks run on the runtime now (whoever started them)."""
        return self.context.running_task_count

    @property
    def startup(self) -> ActorFuture[None]:
        """The outcome of the start: done once the agent is up and the working directory
        exists, failed with why it did not come up (see :meth:`wait_started`)."""
        return self.context.startup

    def events(self, maxsize: int = observe.DEFAULT_BUFFER) -> Subscription:
        """A subscription to this runtime's events (see :mod:`actorcluster.observe`)."""
        return observe.subscribe(hosts=[self.host], maxsize=maxsize)

    def start_process(
        self,
        spec: ProcessSpec,
        policy: RestartPolicy,
        *,
        label: str | None = None,
        wait_for_host: bool = True,
    ) -> SupervisedProcess:
        """Keep ``spec`` running on this runtime, in its subtree, restarted by
        ``policy``; returns its Popen-like handle at once. The one process-supervision
        service (:func:`~actorcluster.runtimes.supervised.supervise_process`), used by
        ``Runtime.supervise`` and by the cluster coordinators.

        ``label``: its id among the runtime's processes (default: ``spec.name``).
        ``wait_for_host=False``: a lost host is an exit like any other (counted by the
        policy), as a cluster wants.

        Raises:
            UsageError: a process of that label is supervised already, or the runtime
                was stopped.
        """
        return supervise_process(self, spec, policy, label=label, wait_for_host=wait_for_host)
