"""Notifications a running task emits; the execution log is built from them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FunctionReturned",
    "StepFinished",
    "StepOutput",
    "StepStarted",
    "TaskEvent",
    "TaskFinished",
    "TransferProgress",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted:
    """A step began."""

    task: str
    """The task's name."""
    index: int
    """The step's index, from 0."""
    description: str
    """What the step does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepOutput:
    """A piece of a step's output arrived from the host."""

    task: str
    """The task's name."""
    index: int
    """The step's index."""
    fd: int
    """1 for stdout, 2 for stderr."""
    text: str
    """The text (decoded as UTF-8, undecodable bytes replaced)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFinished:
    """A step ended."""

    task: str
    """The task's name."""
    index: int
    """The step's index."""
    ok: bool
    """Whether it succeeded."""
    exit_code: int | None = None
    """A command's exit code; None for other steps."""
    seconds: float = 0.0
    """How long it took."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFinished:
    """A task ended: all steps done, or stopped at the first failing one."""

    task: str
    """The task's name."""
    ok: bool
    """Whether every step succeeded."""
    error: str = ""
    """The error, in words, when it failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionReturned:
    """A function step returned; its value, still pickled."""

    task: str
    """The task's name."""
    index: int
    """The step's index."""
    value: bytes
    """The return value, pickled on the host (load with ``pickle.loads``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferProgress:
    """A file transfer step moved more bytes."""

    task: str
    """The task's name."""
    index: int
    """The step's index."""
    done: int
    """Bytes moved so far."""
    total: int | None
    """Bytes to move in all, when known."""


TaskEvent = (
    StepStarted | StepOutput | StepFinished | FunctionReturned | TransferProgress | TaskFinished
)
"""Any task event."""
