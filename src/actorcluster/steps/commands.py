"""Command and function steps."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

from actorcluster.errors import RemoteFunctionError, TaskExecutionError
from actorcluster.messages.events import FunctionReturned
from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from actorcluster.messages.steps import RunCommand, RunFunction
    from actorcluster.steps.step_context import StepContext

from actorcluster.steps.step_context import OutputCollector

__all__ = ["run_command", "run_function"]


def run_command(context: StepContext, step: RunCommand) -> tuple[int, str]:
    """Run a command; return (exit code, output). A non-zero exit raises.

    Raises:
        TaskExecutionError: the command exited non-zero (code and output tail included).
        TaskCancelledError: the task was cancelled.
        AgentLostError: the host or agent went away.
    """
    output = OutputCollector(context)
    request = context.client.submit(
        Kind.RUN,
        {"cmd": step.command, "env": context.env, "cwd": context.working_dir},
        output.on_frame,
    )
    frame = context.wait(request)
    if frame.kind != Kind.EXIT:
        raise context.fail(step.command, frame, output.text())
    code = int(frame.payload["code"])
    if code != 0:
        raise TaskExecutionError(
            context.task, context.index, step.command, code, output.text(), context.host
        )
    return code, output.text()


def run_function(context: StepContext, step: RunFunction) -> str:
    """Call a function on the host; emit its pickled return value; return its output.

    Raises:
        RemoteFunctionError: the function raised on the host (cause: the exception
            itself when it can be unpickled here).
    """
    output = OutputCollector(context)
    request = context.client.submit(
        Kind.CALL,
        {"payload": step.payload, "env": context.env, "cwd": context.working_dir},
        output.on_frame,
    )
    frame = context.wait(request)
    if frame.kind == Kind.RESULT:
        value = frame.payload["value"]
        context.emit(FunctionReturned(task=context.task, index=context.index, value=value))
        return output.text()
    if frame.kind == Kind.RAISED:
        payload = frame.payload
        error = RemoteFunctionError(
            context.task,
            context.index,
            step.describe(),
            str(payload.get("type", "Exception")),
            str(payload.get("traceback", "")),
            context.host,
        )
        raise error from _load_exception(payload.get("exc"))
    raise context.fail(step.describe(), frame, output.text())


def _load_exception(data: object) -> BaseException | None:
    if not isinstance(data, bytes):
        return None
    try:
        exc = pickle.loads(data)
    except Exception:  # the exception's class may not exist here
        return None
    return exc if isinstance(exc, BaseException) else None
