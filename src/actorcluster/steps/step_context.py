"""What every step execution needs: the agent, the environment, the event sink."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster.errors import TaskExecutionError
from actorcluster.messages.events import StepOutput
from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.messages.events import TaskEvent
    from actorcluster.remote.agent.frames import Frame
    from actorcluster.remote.client import AgentClient, Request
    from actorcluster.steps.control import TaskControl

__all__ = ["OutputCollector", "StepContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepContext:
    """One step's execution environment."""

    client: AgentClient
    """The agent the step talks to."""
    task: str
    """The task's name."""
    index: int
    """The step's index."""
    host: str
    """The runtime's host."""
    env: dict[str, str]
    """The environment for the step."""
    control: TaskControl
    """Cancellation."""
    emit: Callable[[TaskEvent], None]
    """Where the step's events go."""
    working_dir: str
    """The runtime's working directory on the host."""

    def wait(self, request: Request) -> Frame:
        """Wait for a request's final frame; raise if the task was cancelled meanwhile."""
        self.control.track(self.client, request)
        try:
            frame: Frame = request.future.get()
        finally:
            self.control.untrack()
        if frame.kind == Kind.ERROR and frame.payload.get("type") == "cancelled":
            raise self.control.error()
        return frame

    def fail(self, description: str, frame: Frame, output: str = "") -> TaskExecutionError:
        """The error for a step that the agent answered with ERROR."""
        payload = frame.payload
        message = f"{payload.get('type', 'error')}: {payload.get('message', payload)}"
        return TaskExecutionError(
            self.task, self.index, description, None, (output + "\n" + message).strip(), self.host
        )


class OutputCollector:
    """Turns OUTPUT frames into text: the step's log entry and live StepOutput events."""

    def __init__(self, context: StepContext) -> None:
        self._context = context
        self._parts: list[str] = []
        self._decoders: dict[int, Any] = {}

    def on_frame(self, frame: Frame) -> None:
        """Feed one frame (called on the agent client's reader thread)."""
        if frame.kind != Kind.OUTPUT:
            return
        fd = int(frame.payload.get("fd", 1))
        decoder = self._decoders.get(fd)
        if decoder is None:
            decoder = self._decoders[fd] = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(frame.payload.get("data", b""))
        if text:
            self._parts.append(text)
            context = self._context
            context.emit(StepOutput(task=context.task, index=context.index, fd=fd, text=text))

    def text(self) -> str:
        """Everything collected so far, stdout and stderr in arrival order."""
        return "".join(self._parts)
