"""The typed, frozen records the supervision tree publishes (see :mod:`.bus`).

Every event names its ``host`` ("" when it belongs to no host) and carries ``at`` (wall
time) and ``seq`` (a process-wide order). Its ``kind`` is a stable dotted name
(``task.finished``), the same in JSON (:meth:`Event.to_dict`) and the web view.

The documented sequences (the tests hold the stream to them):

- runtime: ``runtime.connecting``, ``runtime.ready``; then per outage
  ``runtime.lost``, ``runtime.connecting`` (each attempt), ``runtime.reattached`` (the
  same agent session taken up again) or ``runtime.ready`` (a new agent); finally
  ``runtime.gone``.
- task: ``task.submitted``, ``task.started`` (its first step began), one
  ``task.step_finished`` per step that ran, then exactly one of ``task.finished``,
  ``task.failed`` or ``task.cancelled``. A task cancelled (or failing) before its first
  step skips ``task.started``. ``task.output`` pieces come between start and end.
- supervised process: ``process.started`` (incarnation 1), then per exit
  ``process.exited`` and, if it is restarted, ``process.restarted`` (incarnation 2,
  3, ...); ``process.gave_up`` when its supervisor gave up, ``process.stopped`` when it
  was stopped on purpose.
- tunnel: ``tunnel.opened``, ``tunnel.closed`` (again after each reconnect).
- cluster: ``cluster.starting``, ``cluster.master_ready``, ``cluster.stopped``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ClusterMasterReady",
    "ClusterStarting",
    "ClusterStopped",
    "Event",
    "ProcessExited",
    "ProcessGaveUp",
    "ProcessRestarted",
    "ProcessStarted",
    "ProcessStopped",
    "RuntimeConnecting",
    "RuntimeGone",
    "RuntimeLost",
    "RuntimeReady",
    "RuntimeReattached",
    "TaskCancelled",
    "TaskFailed",
    "TaskFinished",
    "TaskOutput",
    "TaskStarted",
    "TaskStepFinished",
    "TaskSubmitted",
    "TunnelClosed",
    "TunnelOpened",
    "event_types",
]

_seq = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event has."""

    kind: ClassVar[str] = "event"
    host: str = ""
    """The runtime's host ("" for events of no host)."""
    at: float = field(default_factory=time.time)
    """When it happened (seconds since the epoch)."""
    seq: int = field(default_factory=_seq.__next__)
    """Its place in the process-wide order of events."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data, with ``kind``."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        data["kind"] = self.kind
        return data


# --- runtimes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConnecting(Event):
    """An attempt to connect (or reconnect) to the host began."""

    kind: ClassVar[str] = "runtime.connecting"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeReady(Event):
    """A new agent is up on the host: the runtime is usable."""

    kind: ClassVar[str] = "runtime.ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeReattached(Event):
    """After an outage, the host's agent session (its tasks, its processes) was
    taken up again."""

    kind: ClassVar[str] = "runtime.reattached"
    down_seconds: float = 0.0
    """How long the host was away."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeLost(Event):
    """The host went away (the runtime reconnects)."""

    kind: ClassVar[str] = "runtime.lost"
    reason: str = ""
    """What was seen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeGone(Event):
    """The runtime was stopped: nothing of it is left."""

    kind: ClassVar[str] = "runtime.gone"
    reason: str = ""
    """Why."""


# --- tasks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _TaskEvent(Event):
    task_id: int = 0
    """Unique (in this process) for each execution of a task."""
    task: str = ""
    """The task's name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSubmitted(_TaskEvent):
    """A task was handed to its runtime."""

    kind: ClassVar[str] = "task.submitted"
    steps: tuple[str, ...] = ()
    """What each step does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted(_TaskEvent):
    """The task's first step began on the host."""

    kind: ClassVar[str] = "task.started"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOutput(_TaskEvent):
    """A piece of a step's output arrived."""

    kind: ClassVar[str] = "task.output"
    index: int = 0
    """The step's index."""
    fd: int = 1
    """1 for stdout, 2 for stderr."""
    text: str = ""
    """The text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStepFinished(_TaskEvent):
    """A step ended."""

    kind: ClassVar[str] = "task.step_finished"
    index: int = 0
    """The step's index, from 0."""
    ok: bool = True
    """Whether it succeeded."""
    exit_code: int | None = None
    """A command's exit code."""
    seconds: float = 0.0
    """How long it took."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFinished(_TaskEvent):
    """Every step succeeded."""

    kind: ClassVar[str] = "task.finished"
    seconds: float = 0.0
    """From submission to the end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(_TaskEvent):
    """A step failed (or the host went away for good)."""

    kind: ClassVar[str] = "task.failed"
    error: str = ""
    """The error, in words."""
    seconds: float = 0.0
    """From submission to the end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCancelled(_TaskEvent):
    """The task was cancelled (its step in flight killed on the host)."""

    kind: ClassVar[str] = "task.cancelled"
    reason: str = ""
    """Why."""
    seconds: float = 0.0
    """From submission to the end."""


# --- supervised processes -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ProcessEvent(Event):
    process: str = ""
    """The supervised process's name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStarted(_ProcessEvent):
    """Its command was sent to the host for the first time."""

    kind: ClassVar[str] = "process.started"
    incarnation: int = 1
    """Which start this is (1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessExited(_ProcessEvent):
    """An incarnation ended by itself."""

    kind: ClassVar[str] = "process.exited"
    incarnation: int = 1
    """Which start ended."""
    code: int | None = None
    """Its exit code; None when its host went away with it."""
    signal: int | None = None
    """The signal that ended it, when one did (a negative code, or a shell's 128+N)."""
    last_lines: tuple[str, ...] = ()
    """The last lines of its output."""
    restarting: bool = False
    """Whether it will be started again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessRestarted(_ProcessEvent):
    """Its command was sent to the host again."""

    kind: ClassVar[str] = "process.restarted"
    incarnation: int = 2
    """Which start this is (2 or more)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessGaveUp(_ProcessEvent):
    """Its supervisor gave up on it (too many restarts in its period)."""

    kind: ClassVar[str] = "process.gave_up"
    reason: str = ""
    """Why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStopped(_ProcessEvent):
    """It was stopped on purpose (or exited for good); it will not run again."""

    kind: ClassVar[str] = "process.stopped"


# --- tunnels --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelOpened(Event):
    """A port exposure's listener is open."""

    kind: ClassVar[str] = "tunnel.opened"
    tunnel: str = ""
    """The tunnel's key."""
    carrier: str = ""
    """What carries its traffic."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelClosed(Event):
    """A port exposure's listener (and its connections) closed."""

    kind: ClassVar[str] = "tunnel.closed"
    tunnel: str = ""
    """The tunnel's key."""
    reason: str = ""
    """Why."""


# --- clusters -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClusterEvent(Event):
    cluster: str = ""
    """The cluster's name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStarting(_ClusterEvent):
    """A cluster's master and workers are being started."""

    kind: ClassVar[str] = "cluster.starting"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterMasterReady(_ClusterEvent):
    """The cluster's master is up."""

    kind: ClassVar[str] = "cluster.master_ready"
    port: int | None = None
    """The master's port."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterStopped(_ClusterEvent):
    """The cluster was stopped."""

    kind: ClassVar[str] = "cluster.stopped"


def event_types() -> dict[str, type[Event]]:
    """Every event type by its ``kind``."""
    found: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__name__.startswith("_") and cls is not Event:
            found[cls.kind] = cls
    return found
