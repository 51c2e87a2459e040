"""Opt-in retry and failover of tasks: :func:`start_with_retries`.

A task created with ``retries=N, idempotent=True`` whose execution is lost with its
host (the host unreachable, the agent lost, the work killed as the host went away) is
re-sent, up to N times, after a short backoff: on the same runtime (which waits for
its reconnect), or, started through a group with ``host=None``, on whichever reachable
host the group picks (failover). One future spans every attempt: it ends with the
first success, the first failure that is not the host's (a non-zero exit, a function
that raised, a cancel), or the last attempt's error. Each retry logs ``task.retrying``
(host, attempt, error).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster._timers import TIMERS
from actorcluster._workers import THREADS
from actorcluster.errors import ActorClusterError, HostUnreachableError, TaskCancelledError
from actorcluster.supervisors import Backoff

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.futures import ActorFuture
    from actorcluster.runtimes.runtime import Runtime
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["RETRY_BACKOFF", "start_with_retries"]

log = get_logger(__name__)

RETRY_BACKOFF = Backoff(initial=0.2, maximum=5.0, multiplier=2.0, jitter=0.2)
"""Delays before each retry of a task."""


def retryable(error: BaseException | None) -> bool:
    """Whether the failure is the host's (the work may not have run): worth a retry."""
    return isinstance(error, HostUnreachableError)


class _Attempts:
    """The attempts of one task: the outer future, the cancel, what is left."""

    def __init__(
        self,
        task: RuntimeTask,
        outer: ActorFuture[Any],
        choose: Callable[[Runtime], Runtime],
        start: Callable[[Runtime], ActorFuture[Any]],
    ) -> None:
        self.task = task
        self.outer = outer
        self.choose = choose
        self.start = start
        self.left = task.retries
        self.attempt = 0
        self.cancelled = False
        self.env = dict(task.env_variables)
        self.lock = threading.Lock()
        outer.set_canceller(self.cancel)

    def cancel(self) -> None:
        """The user cancelled: the attempt in flight is cancelled, none follows."""
        with self.lock:
            self.cancelled = True
            control = self.task._control
        if control is not None:
            control.cancel("cancelled through its future")

    def run(self, runtime: Runtime, *, first: bool = False) -> None:
        """Start an attempt on ``runtime``; a failure to start counts as an attempt
        (the first one's, if not the host's, is raised to the caller)."""
        self.task.env_variables = dict(self.env)  # not the last host's
        self.attempt += 1
        try:
            inner = self.start(runtime)
        except ActorClusterError as error:
            if first and not retryable(error):
                self.outer.fail(error)
                raise
            self.ended(runtime, error, None)
            return
        inner.add_done_callback(lambda done: self.ended(runtime, done._error(), done))

    def ended(
        self, runtime: Runtime, error: BaseException | None, inner: ActorFuture[Any] | None
    ) -> None:
        if error is None and inner is not None:
            self.outer.set(inner.get(timeout=0))
            return
        assert error is not None
        with self.lock:
            again = retryable(error) and self.left > 0 and not self.cancelled
            if again:
                self.left -= 1
        if not again:
            self.outer.fail(error)
            return
        log.info(
            "task.retrying",
            task=self.task.name,
            host=runtime.host,
            attempt=self.attempt + 1,
            error=str(error),
        )
        delay = RETRY_BACKOFF.delay(self.attempt - 1)
        TIMERS.call_later(delay, lambda: self._spawn(runtime))

    def _spawn(self, failed: Runtime) -> None:
        """On the timer thread: start the next attempt off it (starting may wait for a
        reconnect)."""
        THREADS.start(self._next, failed, name="actorcluster-retry")

    def _next(self, failed: Runtime) -> None:
        if self.cancelled:
            reason = "cancelled through its future, between two attempts"
            self.outer.fail(TaskCancelledError(self.task.name, reason, failed.host))
            return
        try:
            runtime = self.choose(failed)
        except ActorClusterError as error:
            self.outer.fail(error)
            return
        self.run(runtime)


def start_with_retries(
    task: RuntimeTask,
    runtime: Runtime,
    outer: ActorFuture[Any],
    start: Callable[[Runtime], ActorFuture[Any]],
    choose: Callable[[Runtime], Runtime] | None = None,
) -> ActorFuture[Any]:
    """Run ``task`` on ``runtime`` with up to ``task.retries`` retries; ``outer`` (the
    task's future) ends with the first success or the last failure.

    Args:
        task: the task.
        runtime: where the first attempt runs.
        outer: the future the caller holds.
        start: ``start(runtime)`` starts one attempt and returns its own future.
        choose: ``choose(failed_runtime)`` picks the runtime of a retry; None: the same.

    Raises:
        UsageError: the first attempt could not start for a reason of the caller's.
    """
    attempts = _Attempts(task, outer, choose or (lambda failed: failed), start)
    attempts.run(runtime, first=True)
    return outer
