"""Cancellation of a running task: whether to stop, and the request in flight."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from actorcluster.errors import TaskCancelledError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Cancellable", "TaskControl"]


class Cancellable(Protocol):
    """A request in flight that can be stopped on the host."""

    def cancel(self) -> None:
        """Stop it on the host."""


class TaskControl:
    """Shared by a running task and whoever may stop it; thread-safe.

    The task registers each request before it waits on it; :meth:`cancel` marks the
    task cancelled, stops the request in flight on the host (a command's process group
    is killed) and calls the task's wake-up, so the task ends at once.
    """

    def __init__(self, task: str, host: str) -> None:
        self.task = task
        self.host = host
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._in_flight: Cancellable | None = None
        self._on_cancel: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<TaskControl {self.host}/{self.task} {'cancelled' if self.cancelled else 'live'}>"

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._reason is not None

    def error(self) -> TaskCancelledError:
        """The cancellation error for this task."""
        return TaskCancelledError(self.task, self._reason or "cancelled", self.host)

    def check(self) -> None:
        """Raise the cancellation error if the task was cancelled."""
        if self._reason is not None:
            raise self.error()

    def on_cancel(self, wake: Callable[[], None]) -> None:
        """What :meth:`cancel` calls after stopping the request in flight (the task
        actor's wake-up, for a task waiting on no request)."""
        self._on_cancel = wake

    def finished(self) -> None:
        """The task ended: forget its wake-up and request, so a task kept for its
        results keeps none of its actor."""
        with self._lock:
            self._in_flight = None
            self._on_cancel = None

    def track(self, request: Cancellable) -> None:
        """Remember the request in flight (stopping it at once if already cancelled)."""
        with self._lock:
            self._in_flight = request
            cancelled = self._reason is not None
        if cancelled:
            request.cancel()

    def untrack(self) -> None:
        """The request in flight ended."""
        with self._lock:
            self._in_flight = None

    def cancel(self, reason: str = "stopped by the user") -> None:
        """Stop the task: no further step starts; the step in flight is stopped."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
            request, wake = self._in_flight, self._on_cancel
        if request is not None:
            request.cancel()
        if wake is not None:
            wake()
