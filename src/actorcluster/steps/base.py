"""A step being carried out: :class:`StepRun`, the shape every kind of step has."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from actorcluster.errors import (
    RemoteOperationError,
    RequestCancelledError,
    TaskExecutionError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.remote import Call
    from actorcluster.steps.context import StepContext

__all__ = ["StepRun"]


class StepRun(abc.ABC):
    """One step of a running task, driven by the task's actor.

    :meth:`start` sends the step's request (a file upload streams its data first) and
    returns it; data that arrives for it is handed to ``deliver`` on the session's
    reader thread (which tells the task actor), and comes back to :meth:`feed` on the
    actor's thread; once the request ended, :meth:`finish` gives the step's result or
    raises its typed error.

    Args:
        context: the step's environment.
        deliver: hands an item to the task actor (quick; called on the reader thread).
    """

    def __init__(self, context: StepContext, deliver: Callable[[object], None]) -> None:
        self.context = context
        self.deliver = deliver

    @abc.abstractmethod
    def start(self) -> Call[Any]:
        """Send the request; return it."""

    def feed(self, item: object) -> None:  # noqa: B027 - steps without data ignore it
        """Take an item :attr:`deliver` was given (on the task actor's thread)."""

    @abc.abstractmethod
    def finish(self, call: Call[Any]) -> int | None:
        """The step's result once ``call`` is done: a command's exit code, else None.

        Raises:
            TaskExecutionError: the step failed (its subclasses say how).
            TaskCancelledError: the task was cancelled.
            HostUnreachableError: the host or its agent went away.
        """

    def abort(self) -> None:  # noqa: B027 - only steps with local state undo anything
        """Undo local effects of a step that will not finish (a partial download)."""

    def outcome(self, call: Call[Any]) -> Any:
        """``call``'s result, with a cancellation as the task's and a failure on the
        host as a :class:`TaskExecutionError` of this step."""
        context = self.context
        try:
            return call.result(timeout=0)
        except RequestCancelledError:
            raise context.control.error() from None
        except RemoteOperationError as exc:
            raise TaskExecutionError(
                context.index, context.task, context.host, "", exc.reason, command=self.describe()
            ) from None

    @abc.abstractmethod
    def describe(self) -> str:
        """The step in words (for errors)."""
