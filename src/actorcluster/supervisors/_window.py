"""Restart intensity: at most ``max_restarts`` restarts in any window of ``period``."""

from __future__ import annotations

from collections import deque

__all__ = ["RestartWindow"]


class RestartWindow:
    """The restarts a supervisor decided on within the last ``period`` seconds.

    As OTP's ``add_restart``: a restart is recorded, those older than ``period`` are
    forgotten (one exactly ``period`` old included), and the restart is allowed if no
    more than ``max_restarts`` remain. ``max_restarts`` None allows every restart
    (forever: the backoff alone paces them).
    """

    def __init__(self, max_restarts: int | None, period: float) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self._restarts: deque[tuple[float, str]] = deque()

    def record(self, now: float, child_id: str) -> bool:
        """Record a restart of ``child_id``; False if it exceeds the intensity."""
        self._forget(now)
        self._restarts.append((now, child_id))
        return self.max_restarts is None or len(self._restarts) <= self.max_restarts

    def count(self, now: float, child_id: str | None = None) -> int:
        """Restarts within the period (of one child, if ``child_id`` is given)."""
        self._forget(now)
        return sum(1 for _, child in self._restarts if child_id in (None, child))

    def _forget(self, now: float) -> None:
        while self._restarts and self._restarts[0][0] <= now - self.period:
            self._restarts.popleft()
