"""Task messages: a named, ordered list of steps with the environment they run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actorcluster.messages.steps import Step

__all__ = ["Task"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """What a ``RuntimeTask`` sends to be executed: its steps, in order."""

    name: str
    """The task's name, unique per runtime for its execution log."""
    steps: tuple[Step, ...]
    """The steps, executed in order; the first failing one ends the task."""
    env: tuple[tuple[str, str], ...] = field(default=())
    """Environment variables for every step (the runtime's, as lazycluster gives a task
    its runtime's), applied on top of the agent's own environment."""

    @property
    def env_dict(self) -> dict[str, str]:
        """The environment as a new dict."""
        return dict(self.env)
