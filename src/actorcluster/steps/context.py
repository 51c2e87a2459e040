"""What carrying out one step needs: the agent, the environment, where events go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from actorcluster._limits import MAX_RETURN_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.messages.events import TaskEvent
    from actorcluster.remote import AgentClient
    from actorcluster.steps.control import TaskControl

__all__ = ["StepContext"]


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
    """Where the step's events go (called on the task actor's thread)."""
    working_dir: str
    """The runtime's working directory on the host."""
    max_return_size: int = MAX_RETURN_SIZE
    """Bytes a function's return value may take once unpickled."""
