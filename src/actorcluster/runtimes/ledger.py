"""The tasks a runtime executed, kept for their logs and return values: :class:`TaskLedger`.

lazycluster keeps every task a runtime ran until ``clear_tasks()``; that stays the
default. A long-running service that runs millions of tasks sets a bound
(``Runtime(..., retain_tasks=N)``): then only the latest ``N`` finished tasks are kept
(running ones always are), so its memory stays flat; whoever keeps more of a task
(the runtime's process table) hears of each task dropped (:meth:`TaskLedger.on_drop`).
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from actorcluster.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["TaskLedger"]


class TaskLedger:
    """The tasks run on one runtime, oldest first; thread-safe.

    Args:
        retain: keep at most this many finished tasks (the oldest go first); None keeps
            them all.
    """

    def __init__(self, retain: int | None = None) -> None:
        if retain is not None and (
            isinstance(retain, bool) or not isinstance(retain, int) or retain < 0
        ):
            raise UsageError(f"retain_tasks must be None or an int >= 0, not {retain!r}")
        self._retain = retain
        self._tasks: collections.deque[RuntimeTask] = collections.deque()
        self._lock = threading.Lock()
        self._trim_at = 0 if retain is None else 2 * retain + 16
        self._on_drop: Callable[[RuntimeTask], None] | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    def on_drop(self, callback: Callable[[RuntimeTask], None]) -> None:
        """Call ``callback(task)`` for each finished task the bound drops (not for
        :meth:`clear`), outside the ledger's lock."""
        self._on_drop = callback

    def add(self, task: RuntimeTask) -> None:
        """Record a task that was just started; drop the oldest finished ones past the bound."""
        dropped: list[RuntimeTask] = []
        with self._lock:
            self._tasks.append(task)
            retain, tasks = self._retain, self._tasks
            if retain is None:
                return
            while len(tasks) > retain and not tasks[0].is_running:
                dropped.append(tasks.popleft())
            if len(tasks) > self._trim_at:  # a long-running task holds the front
                dropped += self._trim(retain)
                # the next full pass waits until the ledger doubled: linear time overall
                self._trim_at = max(2 * retain + 16, 2 * len(self._tasks))
        if self._on_drop is not None:
            for gone in dropped:
                self._on_drop(gone)

    def _trim(self, retain: int) -> list[RuntimeTask]:
        """Drop the oldest finished tasks until at most ``retain`` finished ones remain;
        the dropped ones."""
        excess = sum(1 for task in self._tasks if not task.is_running) - retain
        if excess <= 0:
            return []
        kept: collections.deque[RuntimeTask] = collections.deque()
        dropped = []
        for task in self._tasks:
            if excess > 0 and not task.is_running:
                excess -= 1
                dropped.append(task)
            else:
                kept.append(task)
        self._tasks = kept
        return dropped

    def tasks(self) -> list[RuntimeTask]:
        """Every recorded task, oldest first."""
        with self._lock:
            return list(self._tasks)

    def latest(self, name: str) -> RuntimeTask | None:
        """The latest task of that name, or None."""
        with self._lock:
            return next((task for task in reversed(self._tasks) if task.name == name), None)

    def clear(self) -> None:
        """Forget every task (running ones keep running)."""
        with self._lock:
            self._tasks.clear()

    def function_returns(self) -> Generator[object, None, None]:
        """Every task's function return values, in the order the tasks started; waits
        for each task still running."""
        for task in self.tasks():
            yield from task.function_returns

    def join(self) -> None:
        """Wait until every task not marked ``omit_on_join`` ended."""
        for task in self.tasks():
            if not task.omit_on_join:
                task.join()
