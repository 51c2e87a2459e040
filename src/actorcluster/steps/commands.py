"""Command and function steps.

A function's results stay pickled until the user asks for them: its return value is
emitted as bytes (unpickled by ``function_returns``), and the exception it raised
travels inside :class:`~actorcluster.errors.RemoteFunctionError`, unpickled on first
access to its ``exception`` (or ``__cause__``). Unpickling trusts the host.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster.errors import RemoteFunctionError, TaskExecutionError
from actorcluster.messages.events import FunctionReturned, StepOutput
from actorcluster.remote import CallRaised
from actorcluster.steps.base import StepRun
from actorcluster.steps.returns import check_return, estimated_size

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.messages.steps import RunCommand, RunFunction
    from actorcluster.remote import Call
    from actorcluster.steps.context import StepContext

__all__ = ["CommandRun", "FunctionRun", "Output"]

OUTPUT_TAIL = 64 * 1024
"""Characters of a step's output kept for its error (the log keeps everything)."""


@dataclass(frozen=True, slots=True)
class Output:
    """A piece of a step's output, on its way from the reader to the task actor."""

    fd: int
    """1 for stdout, 2 for stderr."""
    data: bytes
    """The bytes as the host sent them."""


class _OutputStep(StepRun):
    """A step whose output is decoded (UTF-8, per stream) into StepOutput events."""

    def __init__(self, context: StepContext, deliver: Callable[[object], None]) -> None:
        super().__init__(context, deliver)
        self._decoders: dict[int, codecs.IncrementalDecoder] = {}
        self._tail: list[str] = []
        self._tail_size = 0

    def on_output(self, fd: int, data: bytes) -> None:
        """Hand output to the task actor (on the reader thread)."""
        self.deliver(Output(fd, data))

    def feed(self, item: object) -> None:
        """Decode a piece of output and emit it."""
        if not isinstance(item, Output):
            return
        decoder = self._decoders.get(item.fd)
        if decoder is None:
            decoder = self._decoders[item.fd] = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(item.data)
        if text:
            self._keep(text)
            context = self.context
            context.emit(StepOutput(task=context.task, index=context.index, fd=item.fd, text=text))

    def _keep(self, text: str) -> None:
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size - len(self._tail[0]) >= OUTPUT_TAIL:
            self._tail_size -= len(self._tail.pop(0))

    def output_tail(self) -> str:
        """The last :data:`OUTPUT_TAIL` characters of output, both streams in order."""
        return "".join(self._tail)[-OUTPUT_TAIL:]


class CommandRun(_OutputStep):
    """Runs a shell command; a non-zero exit fails the step."""

    def __init__(
        self, context: StepContext, deliver: Callable[[object], None], step: RunCommand
    ) -> None:
        super().__init__(context, deliver)
        self._step = step

    def describe(self) -> str:
        """The command."""
        return self._step.command

    def start(self) -> Call[int]:
        """Start the command in the working directory."""
        context = self.context
        return context.client.run(
            self._step.command, env=context.env, cwd=context.working_dir, on_output=self.on_output
        )

    def finish(self, call: Call[Any]) -> int:
        """The exit code (0).

        Raises:
            TaskExecutionError: the command exited non-zero (code and output tail).
        """
        code = int(self.outcome(call))
        if code != 0:
            context = self.context
            raise TaskExecutionError(
                context.index,
                context.task,
                context.host,
                "",
                self.output_tail(),
                command=self._step.command,
                exit_code=code,
            )
        return code


class FunctionRun(_OutputStep):
    """Calls a cloudpickled function; its return value is emitted (still pickled)."""

    def __init__(
        self, context: StepContext, deliver: Callable[[object], None], step: RunFunction
    ) -> None:
        super().__init__(context, deliver)
        self._step = step

    def describe(self) -> str:
        """``run_function <name>``."""
        return self._step.describe()

    def start(self) -> Call[Any]:
        """Send the call."""
        context = self.context
        return context.client.call(
            self._step.payload,
            env=context.env,
            cwd=context.working_dir,
            on_output=self.on_output,
            name=self._step.name,
            isolated=self._step.isolated,
        )

    def finish(self, call: Call[Any]) -> None:
        """Emit the return value.

        Raises:
            RemoteFunctionError: the function raised on the host (the exception itself,
                still pickled, is unpickled when its ``exception`` or ``__cause__`` is
                first read).
        """
        outcome = self.outcome(call)
        context = self.context
        if isinstance(outcome, CallRaised):
            pickled = outcome.exception  # kept only within the budget its loading has
            budget = context.max_return_size
            if pickled is not None and estimated_size(pickled, budget) > budget:
                pickled = None
            raise RemoteFunctionError(
                context.task,
                context.index,
                self.describe(),
                outcome.type_name,
                outcome.traceback,
                context.host,
                pickled,
            ) from None
        check_return(
            outcome.value,
            context.max_return_size,
            task=context.task,
            index=context.index,
            host=context.host,
        )
        context.emit(FunctionReturned(task=context.task, index=context.index, value=outcome.value))
