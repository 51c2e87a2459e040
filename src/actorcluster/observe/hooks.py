"""What the one-line hooks in the tree call: they publish events (only while anyone
listens) and keep the little state a snapshot needs (each runtime's state and since
when, each supervised process's record), which costs nothing on a task's path."""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from actorcluster.errors import TaskCancelledError
from actorcluster.messages.events import StepFinished, StepOutput, StepStarted
from actorcluster.observe.bus import BUS, emit
from actorcluster.observe.events import (
    ProcessExited,
    ProcessGaveUp,
    ProcessRestarted,
    ProcessStarted,
    ProcessStopped,
    RuntimeConnecting,
    RuntimeGone,
    RuntimeLost,
    RuntimeReady,
    RuntimeReattached,
    TaskCancelled,
    TaskFailed,
    TaskFinished,
    TaskOutput,
    TaskStarted,
    TaskStepFinished,
    TaskSubmitted,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.futures import ActorFuture
    from actorcluster.messages.events import TaskEvent
    from actorcluster.messages.tasks import Task
    from actorcluster.observe.shapes import ProcessLike, RuntimeLike

__all__ = [
    "LAST_LINES",
    "RuntimeRecord",
    "observe_task",
    "process_began",
    "process_ended",
    "process_exited",
    "processes",
    "runtime_state",
    "runtimes",
    "task_future",
    "track_runtime",
]

LAST_LINES = 20
"""Lines of a process's latest output a ``process.exited`` event carries."""

_task_ids = itertools.count(1)
_lock = threading.Lock()
_runtimes: weakref.WeakKeyDictionary[RuntimeLike, RuntimeRecord] = weakref.WeakKeyDictionary()
_processes: weakref.WeakValueDictionary[tuple[str, str], ProcessLike] = (
    weakref.WeakValueDictionary()
)
_ended: weakref.WeakSet[ProcessLike] = weakref.WeakSet()
_futures: weakref.WeakValueDictionary[int, ActorFuture[Any]] = weakref.WeakValueDictionary()


class RuntimeRecord:
    """Where one runtime stands, for snapshots."""

    __slots__ = ("reason", "since", "state")

    def __init__(self) -> None:
        self.state = "connecting"
        """connecting (the first time), ready, lost (until it is back) or gone."""
        self.since = time.time()
        """When it came to this state (seconds since the epoch)."""
        self.reason = ""
        """Why it was lost or gone."""


# --- runtimes -------------------------------------------------------------------------


def track_runtime(context: RuntimeLike) -> None:
    """A runtime's context was made: remember it (weakly) for snapshots."""
    with _lock:
        _runtimes[context] = RuntimeRecord()


def runtimes() -> list[tuple[RuntimeLike, RuntimeRecord]]:
    """Every runtime context alive, with its record, oldest first."""
    with _lock:
        return list(_runtimes.items())


def runtime_state(context: RuntimeLike, state: str, detail: str = "") -> None:
    """The runtime came to ``state`` (connecting, ready, lost, gone); ``detail`` is the
    reason (lost, gone) or how its session came back (ready: "resumed" or "new...")."""
    with _lock:
        record = _runtimes.get(context)
        if record is None:
            record = _runtimes[context] = RuntimeRecord()
        was, since = record.state, record.since
        if was == "gone":
            return  # nothing comes after gone
        if state == record.state and state != "connecting":
            return
        if not (state == "connecting" and was == "lost"):  # reconnecting: still lost
            record.state, record.since = state, time.time()
            record.reason = detail if state in ("lost", "gone") else ""
    host = context.host
    if state == "connecting":
        emit(RuntimeConnecting, host=host)
    elif state == "lost":
        emit(RuntimeLost, host=host, reason=detail)
    elif state == "gone":
        emit(RuntimeGone, host=host, reason=detail)
    elif detail == "resumed" and was != "ready":
        emit(RuntimeReattached, host=host, down_seconds=round(time.time() - since, 3))
    else:
        emit(RuntimeReady, host=host)


# --- tasks ----------------------------------------------------------------------------


def observe_task(
    host: str, task: Task, future: ActorFuture[Any], apply: Callable[[TaskEvent], None]
) -> Callable[[TaskEvent], None]:
    """The emitter a task's actor calls: ``apply`` itself while nobody listens (no
    cost), else one that also publishes the task's events."""
    if not BUS.active:
        return apply
    task_id, name, begun = next(_task_ids), task.name, time.monotonic()
    steps = tuple(step.describe() for step in task.steps)
    _futures[task_id] = future
    emit(TaskSubmitted, host=host, task_id=task_id, task=name, steps=steps)
    started = False

    def publish(event: TaskEvent) -> None:
        nonlocal started
        match event:
            case StepStarted(index=index) if index == 0 and not started:
                started = True
                emit(TaskStarted, host=host, task_id=task_id, task=name)
            case StepOutput(index=index, fd=fd, text=text):
                emit(TaskOutput, host=host, task_id=task_id, task=name, index=index, fd=fd,
                     text=text)  # fmt: skip
            case StepFinished(index=index, ok=ok, exit_code=code, seconds=seconds):
                emit(TaskStepFinished, host=host, task_id=task_id, task=name, index=index,
                     ok=ok, exit_code=code, seconds=seconds)  # fmt: skip
        apply(event)

    def finished(done: ActorFuture[Any]) -> None:
        seconds = round(time.monotonic() - begun, 6)
        error = done.exception(0)
        if error is None:
            emit(TaskFinished, host=host, task_id=task_id, task=name, seconds=seconds)
        elif isinstance(error, TaskCancelledError):
            emit(TaskCancelled, host=host, task_id=task_id, task=name, reason=str(error),
                 seconds=seconds)  # fmt: skip
        else:
            emit(TaskFailed, host=host, task_id=task_id, task=name, error=str(error),
                 seconds=seconds)  # fmt: skip

    future.add_done_callback(finished)
    return publish


def task_future(task_id: int) -> ActorFuture[Any] | None:
    """The future of the task with this id (submitted while anyone listened), if it
    is still referenced."""
    return _futures.get(task_id)


# --- supervised processes -------------------------------------------------------------


def processes() -> list[ProcessLike]:
    """Every supervised process's record alive, by host and name."""
    with _lock:
        return [_processes[key] for key in sorted(_processes.keys())]


def process_began(state: ProcessLike, incarnation: int) -> None:
    """An incarnation of a supervised process was sent to its host."""
    with _lock:
        _processes[(state.host, state.name)] = state
        _ended.discard(state)
    kind = ProcessStarted if incarnation <= 1 else ProcessRestarted
    emit(kind, host=state.host, process=state.name, incarnation=incarnation)


def process_exited(
    state: ProcessLike, incarnation: int, code: int | None, restarting: bool
) -> None:
    """An incarnation ended by itself with ``code``."""
    if not BUS.active:
        return
    lines = tuple(state.output.text(8192).splitlines()[-LAST_LINES:])
    emit(ProcessExited, host=state.host, process=state.name, incarnation=incarnation, code=code,
         signal=_signal(code), last_lines=lines, restarting=restarting)  # fmt: skip


def process_ended(state: ProcessLike, error: BaseException | None) -> None:
    """Its supervision ended: stopped, or (``error``) given up on (published once, however
    many times its record is told)."""
    with _lock:
        if state in _ended:
            return
        _ended.add(state)
    if error is None:
        emit(ProcessStopped, host=state.host, process=state.name)
    else:
        emit(ProcessGaveUp, host=state.host, process=state.name, reason=str(error))


def _signal(code: int | None) -> int | None:
    if code is None:
        return None
    if code < 0:
        return -code
    if 128 < code < 128 + 65:
        return code - 128  # a shell reports a child killed by signal N as 128+N
    return None
