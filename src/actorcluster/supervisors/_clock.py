"""Injected time: the :class:`Clock` protocol, the real :class:`SystemClock`, and the
:class:`ManualClock` tests drive by hand (after trio's ``MockClock``).

Supervisors read the time for restart intensity and wait out backoff delays with
``call_later``, never by sleeping: the callback only tells the supervisor a message,
so its inbox keeps flowing while a restart is pending.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING, Protocol

from actorcluster._timers import TIMERS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Cancellable", "Clock", "ManualClock", "SystemClock"]


class Cancellable(Protocol):
    """What :meth:`Clock.call_later` returns."""

    def cancel(self) -> None:
        """Make sure the callback does not run (no-op if it already ran)."""


class Clock(Protocol):
    """A source of monotonic time that can run a callback later."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        """Run ``fn()`` once, ``delay`` seconds from now, on some other thread.

        ``fn`` must be quick and must not raise.
        """


class SystemClock:
    """Real time: :func:`time.monotonic`, and callbacks on the process's one shared
    timer thread (:data:`actorcluster._timers.TIMERS`), so a hundred pending restarts
    cost no thread each."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        """Run ``fn`` after ``delay`` seconds on the shared timer thread."""
        return TIMERS.call_later(delay, fn)


class _ManualHandle:
    """A callback scheduled on a :class:`ManualClock`."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Drop the callback if it has not run yet."""
        self.cancelled = True


class ManualClock:
    """A clock that only moves when told to; for tests.

    ``call_later`` callbacks run in the thread that calls :meth:`advance`, in order
    of their due time, with :meth:`monotonic` reading that due time while each runs.

    Args:
        start: the initial reading of :meth:`monotonic`.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _ManualHandle]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return f"<ManualClock now={self._now} pending={self.pending}>"

    def monotonic(self) -> float:
        """The current manual time."""
        with self._changed:
            return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable:
        """Schedule ``fn`` at ``now + delay``; it runs inside a later :meth:`advance`."""
        with self._changed:
            handle = _ManualHandle(self._now + max(0.0, delay), fn)
            heapq.heappush(self._heap, (handle.due, next(self._order), handle))
            self._changed.notify_all()
            return handle

    @property
    def pending(self) -> int:
        """How many callbacks are scheduled and not cancelled."""
        with self._changed:
            return sum(1 for _, _, handle in self._heap if not handle.cancelled)

    def next_due(self) -> float | None:
        """The due time of the earliest pending callback, or None."""
        with self._changed:
            self._drop_cancelled()
            return self._heap[0][0] if self._heap else None

    def wait_for_pending(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` callbacks are pending; False on timeout."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(1 for _, _, h in self._heap if not h.cancelled) >= count, timeout
            )

    def advance(self, seconds: float) -> int:
        """Move time forward, running every callback that falls due; returns how many ran.

        Callbacks scheduled by a callback run too if they fall due within the advance.
        """
        if seconds < 0:
            msg = f"cannot move a clock backwards ({seconds})"
            raise ValueError(msg)
        with self._changed:
            target = self._now + seconds
        fired = 0
        while (handle := self._pop_due(target)) is not None:
            handle.fn()
            fired += 1
        with self._changed:
            self._now = max(self._now, target)
        return fired

    def _pop_due(self, target: float) -> _ManualHandle | None:
        with self._changed:
            self._drop_cancelled()
            if not self._heap or self._heap[0][0] > target:
                return None
            _, _, handle = heapq.heappop(self._heap)
            self._now = max(self._now, handle.due)
            return handle

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
