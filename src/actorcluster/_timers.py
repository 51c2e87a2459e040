"""One shared timer thread for the whole process: restarts' backoff, heartbeats, grace
periods.

A thread per timer (``threading.Timer``) costs a thread per reconnecting runtime and
per heartbeat; a hundred runtimes would hold hundreds of threads that only sleep.
:data:`TIMERS` runs every callback on one daemon thread, which starts when the first
timer is set and ends once none is left, so an idle process holds no timer thread.

Callbacks run on that thread: they must be quick (tell an actor, set a flag) and must
not block or raise (a raising callback is logged and dropped).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster._workers import Workers

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TIMERS", "TimerHandle", "Timers"]

log = get_logger(__name__)


def _nothing() -> None:
    """What a cancelled handle would run."""


class TimerHandle:
    """A pending callback; :meth:`cancel` makes sure it does not run."""

    __slots__ = ("_cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self._cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (no-op if it already ran), and let go of it: a
        cancelled handle waits in the heap until its time, holding nothing."""
        self._cancelled = True
        self.fn = _nothing

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled


class Timers:
    """Callbacks at given monotonic times, run in order on one shared daemon thread."""

    def __init__(self, name: str = "actorcluster-timers", idle_exit: float = 2.0) -> None:
        self._name = name
        self._idle_exit = idle_exit
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()
        self._thread = False
        """Whether the timer thread runs (it ends once idle for ``idle_exit`` seconds)."""
        self._workers = Workers(name, limit=1, linger=0.0)

    def __repr__(self) -> str:
        return f"<Timers {self._name} pending={len(self._heap)}>"

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn()`` once, ``delay`` seconds from now, on the timer thread."""
        handle = TimerHandle(time.monotonic() + max(0.0, delay), fn)
        with self._condition:
            heapq.heappush(self._heap, (handle.due, next(self._order), handle))
            if not self._thread:
                self._thread = True
                self._workers.submit(self._run)
            elif self._heap[0][2] is handle:
                self._condition.notify()
        return handle

    def _next_due(self) -> TimerHandle | None:
        """Wait for the next due callback; None once idle long enough (the thread ends)."""
        with self._condition:
            idle_since: float | None = None
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if self._heap:
                    idle_since = None
                    due = self._heap[0][0]
                    if due <= now:
                        return heapq.heappop(self._heap)[2]
                    self._condition.wait(due - now)
                    continue
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= self._idle_exit:
                    self._thread = False
                    return None
                self._condition.wait(self._idle_exit - (now - idle_since))

    def _run(self) -> None:
        while (handle := self._next_due()) is not None:
            if handle.cancelled:
                continue
            try:
                handle.fn()
            except Exception as exc:  # a broken callback must not stop every other timer
                log.error("timers.callback_failed", error=repr(exc))


TIMERS = Timers()
"""The process-wide timer thread."""
