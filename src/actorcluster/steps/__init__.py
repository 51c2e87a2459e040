"""The client half of each kind of step: how a task actor carries it out through the
typed agent client (:mod:`actorcluster.remote`).

:func:`step_run` makes the :class:`StepRun` for a step message; the task actor starts
it, feeds it what arrives for it, and finishes it (see :class:`StepRun`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorcluster.messages.steps import GetFile, RunCommand, RunFunction, SendFile
from actorcluster.steps.base import StepRun
from actorcluster.steps.commands import CommandRun, FunctionRun, Output
from actorcluster.steps.context import StepContext
from actorcluster.steps.control import Cancellable, TaskControl
from actorcluster.steps.transfer import Chunk, GetRun, SendRun, remote_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.messages.steps import Step

__all__ = [
    "Cancellable",
    "Chunk",
    "CommandRun",
    "FunctionRun",
    "GetRun",
    "Output",
    "SendRun",
    "StepContext",
    "StepRun",
    "TaskControl",
    "remote_path",
    "step_run",
]


def step_run(step: Step, context: StepContext, deliver: Callable[[object], None]) -> StepRun:
    """The :class:`StepRun` that carries out ``step``."""
    match step:
        case RunCommand():
            return CommandRun(context, deliver, step)
        case RunFunction():
            return FunctionRun(context, deliver, step)
        case SendFile():
            return SendRun(context, step)
        case GetFile():
            return GetRun(context, deliver, step)
