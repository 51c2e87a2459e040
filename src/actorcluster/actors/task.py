"""TaskActor: carries out one Task message's steps in order and resolves its future."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import CANCEL_GRACE
from actorcluster._logging import get_logger
from actorcluster._timers import TIMERS
from actorcluster.errors import (
    AgentLostError,
    HostUnreachableError,
    TaskCancelledError,
    TaskExecutionError,
)
from actorcluster.messages.events import StepFinished, StepStarted, TaskFinished
from actorcluster.messages.steps import RunCommand, RunFunction
from actorcluster.steps import StepContext, step_run
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster._timers import TimerHandle
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.futures import ActorFuture
    from actorcluster.messages.events import TaskEvent
    from actorcluster.messages.tasks import Task
    from actorcluster.remote import AgentClient, Call
    from actorcluster.steps import StepRun, TaskControl

__all__ = ["CANCEL_GRACE", "TaskActor", "TaskRun", "TaskStatistics"]

log = get_logger(__name__)

_QUICK_STARTS = (RunCommand, RunFunction)
"""Steps whose start only sends a request (a file upload streams: not these)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRun:
    """Everything one execution of a task needs, besides the runtime."""

    task: Task
    """The steps, and the environment they run in."""
    future: ActorFuture[Any]
    """Resolved with ``result`` when every step succeeded, else failed with the error."""
    result: Any
    """What the future is resolved with (the user's RuntimeTask)."""
    control: TaskControl
    """Cancellation."""
    emit: Callable[[TaskEvent], None]
    """Where the events go (the execution log is built from them); called on the
    task actor's thread, never on an I/O thread."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStatistics:
    """A snapshot of a TaskActor."""

    task: str
    """The task's name."""
    step: int
    """The step running (-1 before the first)."""
    steps: int
    """How many steps the task has."""
    done: bool
    """Whether its future is resolved."""


@dataclass(frozen=True, slots=True)
class _AgentReady:
    """Internal: the agent is up (or did not come in time: ``error``)."""

    client: AgentClient | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class _Deliver:
    """Internal: data arrived for step ``index`` (output, a download chunk)."""

    index: int
    item: object


@dataclass(frozen=True, slots=True)
class _StepEnded:
    """Internal: step ``index``'s request ended."""

    index: int


@dataclass(frozen=True, slots=True)
class _Cancelled:
    """Internal: the task was cancelled."""


@dataclass(frozen=True, slots=True)
class _HostChecked:
    """Internal: a step killed by a signal; whether the host went away with it (``lost``)."""

    error: BaseException
    lost: BaseException | None


@dataclass(frozen=True, slots=True)
class _CancelGraceOver:
    """Internal: the host did not confirm a cancelled step in time."""


def _lost(call: Call[None]) -> BaseException | None:
    """The host's loss a ping ended with, or None if the agent answered."""
    try:
        call.result(timeout=0)
    except HostUnreachableError as lost:
        return lost
    except Exception:  # any other answer means the agent is there
        return None
    return None


class TaskActor(SupervisedActor):
    """Runs one task. Temporary child of its runtime's task supervisor.

    It holds no thread while a step runs on the host: each step's request ends with a
    message to this actor (as does the data that arrives for it), so a thousand tasks
    waiting on their hosts cost a thousand small objects, not a thousand threads. Only
    sending a file occupies a thread of the actor pool, for as long as it streams.
    Cancellation goes through the run's :class:`~actorcluster.steps.TaskControl`: the
    agent ends the step in flight at once and the task fails with
    :class:`~actorcluster.errors.TaskCancelledError`.
    """

    def __init__(self, context: RuntimeContext, run: TaskRun) -> None:
        super().__init__()
        steps = run.task.steps
        self.start_here = not steps or isinstance(steps[0], _QUICK_STARTS)
        """A first step whose request is only sent starts on the submitting thread."""
        self._context = context
        self._run = run
        self._index = -1
        self._client: AgentClient | None = None
        self._step: StepRun | None = None
        self._call: Call[Any] | None = None
        self._started = 0.0
        self._grace: TimerHandle | None = None
        self._env = run.task.env_dict
        self._host_checked = False

    def __repr__(self) -> str:
        total = len(self._run.task.steps)
        return f"<TaskActor {self._context.host}/{self._run.task.name} step {self._index}/{total}>"

    def statistics(self) -> TaskStatistics:
        """A frozen snapshot of this actor's state."""
        run = self._run
        return TaskStatistics(
            task=run.task.name, step=self._index, steps=len(run.task.steps), done=run.future.done()
        )

    def on_start(self) -> None:
        """Start the first step, or wait for the agent (a reconnect under way) without
        holding a thread."""
        super().on_start()
        context = self._context
        context.task_started(self._run.control)
        self._run.control.on_cancel(lambda: self._tell(_Cancelled()))
        client = context.current_agent()
        if client is not None:
            self._on_agent_ready(client, None)
        else:
            context.when_agent(lambda client, error: self._tell(_AgentReady(client, error)))

    def on_receive(self, message: Any) -> Any:
        """Dispatch."""
        match message:
            case _AgentReady(client=client, error=error):
                self._on_agent_ready(client, error)
            case _Deliver(index=index, item=item):
                if index == self._index and self._step is not None:
                    self._step.feed(item)
            case _StepEnded(index=index):
                if index == self._index:
                    self._on_step_ended()
            case _Cancelled():
                self._on_cancelled()
            case _CancelGraceOver():
                self._finish(self._run.control.error())
            case _HostChecked(error=error, lost=lost):
                self._on_host_checked(error, lost)
            case _:
                return super().on_receive(message)
        return None

    def _tell(self, message: object) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            return  # already finished: late news is dropped

    def _on_agent_ready(self, client: AgentClient | None, error: BaseException | None) -> None:
        if self._run.future.done():
            return
        if client is None:
            self._finish(error or RuntimeError("no agent"))
            return
        self._client = client
        self._next_step()

    def _next_step(self) -> None:
        """Start the next step, or finish the task after the last one."""
        run = self._run
        if self._run.control.cancelled:
            self._finish(run.control.error())
            return
        self._index += 1
        if self._index >= len(run.task.steps):
            self._finish(None)
            return
        index = self._index
        step = run.task.steps[index]
        assert self._client is not None
        context = StepContext(
            client=self._client,
            task=run.task.name,
            index=index,
            host=self._context.host,
            env=self._env,
            control=run.control,
            emit=run.emit,
            working_dir=self._context.working_dir or ".",
            max_return_size=self._context.options.max_return_size,
        )
        self._step = step_run(step, context, lambda item: self._tell(_Deliver(index, item)))
        run.emit(StepStarted(task=run.task.name, index=index, description=step.describe()))
        self._started = time.monotonic()
        try:
            call = self._step.start()
        except BaseException as exc:
            self._step_failed(exc)
            return
        self._call = call
        run.control.track(call)
        call.add_done_callback(lambda _: self._tell(_StepEnded(index)))

    def _on_step_ended(self) -> None:
        step, call, run = self._step, self._call, self._run
        assert step is not None and call is not None
        run.control.untrack()
        self._call = None
        try:
            code = step.finish(call)
        except BaseException as exc:
            self._step_failed(exc)
            return
        seconds = time.monotonic() - self._started
        run.emit(
            StepFinished(
                task=run.task.name, index=self._index, ok=True, exit_code=code, seconds=seconds
            )
        )
        self._next_step()

    def _step_failed(self, error: BaseException) -> None:
        if self._check_host(error):
            return  # _HostChecked follows
        run = self._run
        if self._step is not None:
            self._step.abort()
        code = error.exit_code if isinstance(error, TaskExecutionError) else None
        seconds = time.monotonic() - self._started
        run.emit(
            StepFinished(
                task=run.task.name, index=self._index, ok=False, exit_code=code, seconds=seconds
            )
        )
        self._finish(error)

    def _check_host(self, error: BaseException) -> bool:
        """A command killed by a signal (not cancelled) may have died with its host:
        ask the agent (a ping) before telling the caller which; True if asked."""
        exit_code = error.exit_code if isinstance(error, TaskExecutionError) else None
        client = self._client
        if (
            exit_code is None
            or exit_code >= 0
            or self._run.control.cancelled
            or client is None
            or self._host_checked
        ):
            return False
        self._host_checked = True
        try:
            ping = client.ping()
        except HostUnreachableError as lost:
            self._tell(_HostChecked(error, lost))
            return True
        ping.add_done_callback(lambda call: self._tell(_HostChecked(error, _lost(call))))
        return True

    def _on_host_checked(self, error: BaseException, lost: BaseException | None) -> None:
        if lost is not None:
            code = error.exit_code if isinstance(error, TaskExecutionError) else None
            reason = (
                f"task {self._run.task.name!r} step {self._index} was killed "
                f"(exit {code}) as the host went away: {lost}"
            )
            kind = lost.kind if isinstance(lost, AgentLostError) else AgentLostError.ENDED
            lost_error = AgentLostError(self._context.host, reason, kind)
            lost_error.__cause__ = error
            error = lost_error
        self._step_failed(error)

    def _on_cancelled(self) -> None:
        if self._run.future.done():
            return
        if self._call is None:
            self._finish(self._run.control.error())
        elif self._grace is None:  # the host was asked to stop the step: give it a moment
            self._grace = TIMERS.call_later(CANCEL_GRACE, lambda: self._tell(_CancelGraceOver()))

    def _finish(self, error: BaseException | None) -> None:
        run = self._run
        if isinstance(error, HostUnreachableError) and self._context.cleanup_requested:
            # The session closed by cleanup() may fail the step before the cancel that
            # cleanup() sent reaches this actor: the task was stopped, not its host lost.
            error = TaskCancelledError(run.task.name, "its runtime stopped", self._context.host)
        if self._grace is not None:
            self._grace.cancel()
        self._context.task_ended(run.control)
        run.control.finished()
        if not run.future.done():
            run.emit(TaskFinished(task=run.task.name, ok=error is None, error=str(error or "")))
            if error is None:
                run.future.set(run.result)
            else:
                summary = (str(error).splitlines() or [type(error).__name__])[0]
                log.debug(
                    "task.failed",
                    host=self._context.host,
                    actor="task",
                    task=run.task.name,
                    step=self._index,
                    error=summary,
                )
                run.future.fail(error)
        self._stop()  # now: no need to queue a stop message behind nothing

    def on_exit(self, error: BaseException | None) -> None:
        """A task that ends before finishing fails its future: none is left pending."""
        run = self._run
        if run.future.done():
            return
        run.control.cancel("its runtime stopped" if error is None else "its actor crashed")
        if self._step is not None:
            self._step.abort()
        self._context.task_ended(run.control)
        run.control.finished()
        reason = "its runtime stopped" if error is None else f"its actor crashed: {error!r}"
        run.emit(TaskFinished(task=run.task.name, ok=False, error=reason))
        context = self._context
        why = context.down_reason if error is None and not context.cleanup_requested else ""
        if why:  # the runtime gave up on a host that stayed away
            gone = f"task {run.task.name!r} did not finish: the runtime gave up on the host"
            run.future.fail(HostUnreachableError(context.host, f"{gone} ({why})"))
            return
        run.future.fail(TaskCancelledError(run.task.name, reason, context.host))
