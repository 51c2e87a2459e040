"""What groups and clusters do to a :class:`~actorcluster.runtimes.RuntimeTask` beyond
lazycluster's builder: record a start that failed, run the last function in a child
process, keep only the first steps.

They live here, beside the task, so that no module outside ``runtimes/`` touches a
task's private members (``tests/test_private_access.py``).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.messages.steps import Step
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["isolate_last_step", "not_started", "with_steps"]


def not_started(task: RuntimeTask, host: str, error: BaseException) -> None:
    """Record an execution of ``task`` on ``host`` that could not start: its future
    fails with ``error`` (a group's other hosts carry on)."""
    task._not_started(host, error)


def isolate_last_step(task: RuntimeTask) -> None:
    """Make ``task``'s last step (a function) run in a child process of the agent
    (``execute_function(..., isolated=True)``)."""
    task._isolate_last_step()


def with_steps(task: RuntimeTask, steps: Sequence[Step]) -> RuntimeTask:
    """A copy of ``task`` (its name, environment, callbacks) that runs ``steps``
    instead of its own (a launcher's task split in two)."""
    copied = copy.deepcopy(task)
    copied._steps = list(steps)
    return copied
