"""TaskActor: executes one Task message's steps in order and resolves its future."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import TaskCancelledError, TaskExecutionError
from actorcluster.messages.events import StepFinished, StepOutput, StepStarted, TaskFinished
from actorcluster.messages.steps import GetFile, RunCommand, RunFunction, SendFile
from actorcluster.steps.commands import run_command, run_function
from actorcluster.steps.step_context import StepContext
from actorcluster.steps.transfer import get_file, send_file
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.actors.context import RuntimeContext
    from actorcluster.futures import ActorFuture
    from actorcluster.messages.events import TaskEvent
    from actorcluster.messages.steps import Step
    from actorcluster.messages.tasks import Task
    from actorcluster.remote.client import AgentClient
    from actorcluster.steps.control import TaskControl

__all__ = ["TaskActor", "TaskRun", "TaskStatistics"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRun:
    """Everything one execution of a task needs, besides the runtime."""

    task: Task
    """The steps."""
    env: dict[str, str]
    """The runtime's environment merged with the task's."""
    future: ActorFuture[Any]
    """Resolved with ``result`` when every step succeeded, else failed with the error."""
    result: Any
    """What the future is resolved with (the user's RuntimeTask)."""
    control: TaskControl
    """Cancellation."""
    emit: Callable[[TaskEvent], None]
    """Where the events go (the execution log is built from them)."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Execute:
    """Internal: run the steps (sent to itself from on_start, so start returns at once)."""


class TaskActor(SupervisedActor):
    """Runs one task. Temporary child of its runtime's task supervisor.

    Its inbox is busy while the steps run (each step waits on the agent), so it is
    stopped and inspected around its inbox: cancellation goes through the run's
    :class:`~actorcluster.steps.control.TaskControl`, which makes the agent end the
    step in flight at once.
    """

    def __init__(self, context: RuntimeContext, run: TaskRun) -> None:
        super().__init__()
        self._context = context
        self._run = run
        self._step = -1
        self._log = log.bind(host=context.host, actor="task", task=run.task.name)

    def __repr__(self) -> str:
        total = len(self._run.task.steps)
        return f"<TaskActor {self._context.host}/{self._run.task.name} step {self._step}/{total}>"

    def statistics(self) -> TaskStatistics:
        """A frozen snapshot of this actor's state."""
        run = self._run
        return TaskStatistics(
            task=run.task.name, step=self._step, steps=len(run.task.steps), done=run.future.done()
        )

    def on_start(self) -> None:
        """Queue the execution; starting returns at once."""
        super().on_start()
        self._context.task_started(self._run.control)
        self.actor_ref.tell(_Execute())

    def on_receive(self, message: Any) -> Any:
        """Dispatch."""
        match message:
            case _Execute():
                self._on_execute()
                return None
            case _:
                return super().on_receive(message)

    def _on_execute(self) -> None:
        run = self._run
        try:
            client = self._context.agent()
            for index, step in enumerate(run.task.steps):
                run.control.check()
                self._step = index
                self._execute_step(client, index, step)
        except BaseException as exc:
            self._finish(exc)
        else:
            self._finish(None)
        finally:
            self.stop()  # queued: the actor stops after this message

    def _execute_step(self, client: AgentClient, index: int, step: Step) -> None:
        run = self._run
        name = run.task.name
        description = step.describe()
        run.emit(StepStarted(task=name, index=index, description=description))
        started = time.monotonic()
        context = StepContext(
            client=client,
            task=name,
            index=index,
            host=self._context.host,
            env=run.env,
            control=run.control,
            emit=run.emit,
            working_dir=self._context.working_dir or ".",
        )
        try:
            exit_code = self._dispatch_step(context, step)
        except BaseException as error:
            code = error.exit_code if isinstance(error, TaskExecutionError) else None
            seconds = time.monotonic() - started
            run.emit(
                StepFinished(task=name, index=index, ok=False, exit_code=code, seconds=seconds)
            )
            raise
        seconds = time.monotonic() - started
        run.emit(
            StepFinished(task=name, index=index, ok=True, exit_code=exit_code, seconds=seconds)
        )

    @staticmethod
    def _dispatch_step(context: StepContext, step: Step) -> int | None:
        match step:
            case RunCommand():
                return run_command(context, step)[0]
            case RunFunction():
                run_function(context, step)
            case SendFile():
                _log_line(context, send_file(context, step))
            case GetFile():
                _log_line(context, get_file(context, step))
        return None

    def _finish(self, error: BaseException | None) -> None:
        run = self._run
        self._context.task_ended(run.control)
        if run.future.done():
            return
        run.emit(TaskFinished(task=run.task.name, ok=error is None, error=str(error or "")))
        if error is None:
            self._log.debug("task.finished", steps=len(run.task.steps))
            run.future.set(run.result)
        else:
            summary = (str(error).splitlines() or [type(error).__name__])[0]
            self._log.info("task.failed", step=self._step, error=summary)
            run.future.fail(error)

    def _fail_pending(self, reason: str) -> None:
        if not self._run.future.done():
            self._run.control.cancel(reason)
            self._finish(TaskCancelledError(self._run.task.name, reason, self._context.host))

    def on_exit(self, error: BaseException | None) -> None:
        """A task that ends before finishing fails its future: none is left pending."""
        self._fail_pending("its runtime stopped" if error is None else "its actor crashed")


def _log_line(context: StepContext, line: str) -> None:
    context.emit(StepOutput(task=context.task, index=context.index, fd=1, text=line + "\n"))
