"""The supervised processes of one runtime, in its supervision subtree.

::

    RuntimeSupervisor[host]            rest_for_one
    ├── TaskSupervisor
    ├── ProcessesSupervisor            one_for_one; first, so a reconnect leaves it be
    │   └── ProcessSupervisor[name]*   one per supervised process: its restart policy
    │       └── ProcessActor           the command; waits while the host is away
    ├── ConnectionActor
    ├── AgentActor
    └── TunnelSupervisor

The processes the runtime should run are kept in its :class:`ProcessRegistry` (in the
runtime's context), so they outlive the subtree: when the runtime's supervisor gives up
on a long outage and its parent starts it again, the new ``ProcessesSupervisor`` starts
one ``ProcessSupervisor`` per wanted process (they wait for the host); when the runtime
is stopped (its user, a ``SupervisionTree`` holding it), every process stops with it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.actors.process import ProcessActor
from actorcluster.errors import UsageError
from actorcluster.messages.supervision import ChildExited
from actorcluster.supervisors import Backoff, ChildSpec, Restart, Strategy, Supervisor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.actors.process import ProcessSpec
    from actorcluster.actors.process_state import ProcessState

__all__ = [
    "ProcessEntry",
    "ProcessRegistry",
    "ProcessSupervisor",
    "ProcessesSupervisor",
    "RestartPolicy",
    "sync_processes",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """How a supervised process is restarted after it exits by itself."""

    restart: Restart = Restart.PERMANENT
    """When: always, after a failure only (transient), never (temporary)."""
    max_restarts: int | None = 5
    """OTP's intensity: at most this many restarts in ``period`` seconds, else it
    fails; None: restart forever (paced by ``backoff``)."""
    period: float = 60.0
    """The intensity window, in seconds (with ``max_restarts`` None: a run this long
    resets the backoff)."""
    backoff: Backoff | None = None
    """The delay before each restart; None: at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessEntry:
    """One process a runtime should run: what, how it restarts, and its record."""

    id: str
    """Unique among the runtime's processes (its supervisor's child id)."""
    spec: ProcessSpec
    """The command and where it runs."""
    policy: RestartPolicy
    """Its restart policy."""
    state: ProcessState
    """Its shared record (status, restarts, exits, output)."""


class ProcessRegistry:
    """The processes one runtime should run, and its current ``ProcessesSupervisor``;
    thread-safe. Kept in the runtime's context, so it outlives supervisor restarts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, ProcessEntry] = {}
        self._supervisor: pykka.ActorRef[Any] | None = None

    def __repr__(self) -> str:
        return f"<ProcessRegistry processes={len(self._entries)}>"

    def add(self, entry: ProcessEntry) -> pykka.ActorRef[Any] | None:
        """Want ``entry`` run; returns the supervisor to tell (None: the next one
        starts it).

        Raises:
            UsageError: a process with its id is wanted already.
        """
        with self._lock:
            if entry.id in self._entries:
                raise UsageError(f"a process named {entry.id!r} is supervised already")
            self._entries[entry.id] = entry
            return self._supervisor

    def discard(self, entry_id: str, entry: ProcessEntry) -> pykka.ActorRef[Any] | None:
        """``entry`` is not wanted any more; returns the supervisor to tell."""
        with self._lock:
            if self._entries.get(entry_id) is entry:
                del self._entries[entry_id]
            return self._supervisor

    def wants(self, entry: ProcessEntry) -> bool:
        """Whether ``entry`` is (still) wanted."""
        with self._lock:
            return self._entries.get(entry.id) is entry

    def entries(self) -> list[ProcessEntry]:
        """The wanted processes, oldest first."""
        with self._lock:
            return list(self._entries.values())

    def publish(self, ref: pykka.ActorRef[Any] | None) -> None:
        """The current ``ProcessesSupervisor`` (None while there is none)."""
        with self._lock:
            self._supervisor = ref

    @property
    def supervisor(self) -> pykka.ActorRef[Any] | None:
        """The current ``ProcessesSupervisor``, if one runs."""
        with self._lock:
            return self._supervisor

    def host_changed(self) -> None:
        """The runtime's agent came or went: every process's status may read
        differently now (``waiting for host``)."""
        for entry in self.entries():
            entry.state.host_changed()


@dataclass(frozen=True, slots=True)
class _Sync:
    """Internal: tell a ``ProcessesSupervisor`` to start the wanted processes it lacks and stop
    those no longer wanted."""


class ProcessSupervisor(Supervisor):
    """One supervised process's own supervisor (its restart policy); it records in
    the process's state how supervision ended, and stops once the process will not
    run again."""

    crash_log_level = "info"  # the process's own exits are logged by its actor

    def __init__(self, context: RuntimeContext, entry: ProcessEntry) -> None:
        policy, state, spec = entry.policy, entry.state, entry.spec
        child = ChildSpec(
            id=entry.id,
            start=lambda: ProcessActor.start(context, spec, state),
            restart=policy.restart,
            shutdown_timeout=10.0,
        )
        super().__init__(
            f"process:{context.host}:{entry.id}",
            Strategy.ONE_FOR_ONE,
            [child],
            max_restarts=policy.max_restarts,
            period=policy.period,
            backoff=policy.backoff,
        )
        self._context = context
        self._entry = entry

    @property
    def entry(self) -> ProcessEntry:
        """The process it supervises."""
        return self._entry

    @property
    def registry(self) -> ProcessRegistry:
        """Its runtime's registry of wanted processes (discard an entry to stop it)."""
        return self._context.processes

    def on_receive(self, message: Any) -> Any:
        """Supervision; once the process will not run again, stop."""
        result = super().on_receive(message)
        if isinstance(message, ChildExited) and self._entry.state.finished:
            self.stop()
        return result

    def on_restart_scheduled(self, child_id: str, attempt: int, delay: float) -> None:
        """Show ``restarting(attempt, next in s)``."""
        self._entry.state.restart_scheduled(attempt, delay)

    def on_exit(self, error: BaseException | None) -> None:
        """Record the end: failed (gave up), stopped (on purpose, or with its runtime),
        or waiting for the host (its runtime's subtree restarts: it comes back)."""
        entry, context = self._entry, self._context
        registry = context.processes
        if error is not None:
            entry.state.stopped(error if isinstance(error, Exception) else None)
            registry.discard(entry.id, entry)
        elif context.stopping or context.closed or not registry.wants(entry):
            entry.state.stopped()
            registry.discard(entry.id, entry)
        elif entry.state.finished:
            registry.discard(entry.id, entry)
        else:
            entry.state.waiting()


def sync_processes(ref: pykka.ActorRef[Any] | None) -> None:
    """Tell a ``ProcessesSupervisor`` (if one runs) to catch up with its registry."""
    if ref is None:
        return
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(_Sync())


def process_child_spec(context: RuntimeContext, entry: ProcessEntry) -> ChildSpec:
    """The child spec of one process's supervisor (temporary: its own supervisor
    restarts it; once that gives up, it stays failed)."""
    return ChildSpec(
        id=entry.id,
        start=lambda: ProcessSupervisor.start(context, entry),
        restart=Restart.TEMPORARY,
        shutdown_timeout=30.0,
    )


class ProcessesSupervisor(Supervisor):
    """One_for_one supervisor of a runtime's supervised processes (see the module
    docstring); starts one child per wanted process and publishes itself."""

    crash_log_level = "info"

    def __init__(self, context: RuntimeContext) -> None:
        registry = context.processes
        children = [process_child_spec(context, e) for e in registry.entries()]
        super().__init__(
            f"processes:{context.host}", Strategy.ONE_FOR_ONE, children, max_restarts=1000
        )
        self._context = context
        self._entries = {entry.id: entry for entry in registry.entries()}
        """The entry each child was started for."""

    def on_start(self) -> None:
        """Start a supervisor per wanted process, publish, then catch up with what
        changed meanwhile."""
        super().on_start()
        self._context.processes.publish(self.actor_ref)
        self.actor_ref.tell(_Sync())

    def on_receive(self, message: Any) -> Any:
        """Sync; supervision."""
        if isinstance(message, _Sync):
            self._sync()
            return None
        return super().on_receive(message)

    def _sync(self) -> None:
        context = self._context
        wanted = {entry.id: entry for entry in context.processes.entries()}
        for child in self.which_children():
            if wanted.get(child.id) is not self._entries.get(child.id):
                self.terminate_child(child.id)  # stopped (or replaced) by its user
                self._entries.pop(child.id, None)
        running = {child.id for child in self.which_children()}
        for child_id, entry in wanted.items():
            if child_id not in running and not entry.state.finished:
                self._entries[child_id] = entry
                try:
                    self.start_child(process_child_spec(context, entry))
                except Exception as exc:  # its supervisor's start failed: say why
                    log.warning("process.start_failed", host=context.host, process=child_id)
                    entry.state.stopped(exc)
                    context.processes.discard(child_id, entry)

    def on_stop(self) -> None:
        """Unpublish, then stop every process."""
        self._context.processes.publish(None)
        super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        """Unpublish."""
        self._context.processes.publish(None)
        super().on_failure(*exc_info)
