"""Cancellation of a running task: which request is in flight, and whether to stop."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster.errors import TaskCancelledError

if TYPE_CHECKING:
    from actorcluster.remote.client import AgentClient, Request

__all__ = ["TaskControl"]


class TaskControl:
    """Shared by a running task and whoever may stop it; thread-safe.

    The task registers each request before waiting on it; :meth:`cancel` marks the task
    cancelled and asks the agent to stop the request in flight (its process group is
    killed), so the task's wait ends at once with ERROR cancelled.
    """

    def __init__(self, task: str, host: str) -> None:
        self.task = task
        self.host = host
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._client: AgentClient | None = None
        self._request: Request | None = None

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

    def track(self, client: AgentClient, request: Request) -> None:
        """Remember the request in flight (cancelling it at once if already cancelled)."""
        with self._lock:
            self._client, self._request = client, request
            cancelled = self._reason is not None
        if cancelled:
            client.cancel(request.request_id)

    def untrack(self) -> None:
        """The request in flight ended."""
        with self._lock:
            self._client = self._request = None

    def cancel(self, reason: str = "stopped by the user") -> None:
        """Stop the task: no further step starts; the step in flight is cancelled."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
            client, request = self._client, self._request
        if client is not None and request is not None:
            client.cancel(request.request_id)
