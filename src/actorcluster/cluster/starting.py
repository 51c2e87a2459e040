"""A master started on a thread of its own, so that the caller can launch the workers
as soon as the master's address is known (see ``MasterWorkerCluster.start``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster._workers import THREADS

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.cluster.context import ClusterContext, MasterEndpoint

__all__ = ["MasterStart"]


class MasterStart:
    """Runs ``start`` (the cluster's ``start_master``) on a thread of the client's
    :data:`~actorcluster._workers.THREADS` at once.

    Args:
        context: the cluster's context (where the master's endpoint appears).
        start: starts the master and waits until it is ready (bounded by its timeout).
        stop: stops the master; called if the caller abandons the start and the master
            came up anyway.
        name: the thread's name.
    """

    def __init__(
        self,
        context: ClusterContext,
        start: Callable[[], None],
        stop: Callable[[], None],
        name: str,
    ) -> None:
        self._context = context
        self._start = start
        self._stop = stop
        self._lock = threading.Lock()
        self._over = False
        self._abandoned = False
        self._ended = threading.Event()
        self.failure: BaseException | None = None
        """Why the master did not start (None: it started, or is still starting)."""
        self._job = THREADS.start(self._run, name=name)

    def _run(self) -> None:
        try:
            self._start()
        except BaseException as error:  # the caller raises it
            self.failure = error
        finally:
            with self._lock:
                self._over = True
                stop = self._abandoned and self.failure is None
            self._context.master_start_ended(self._ended)
            if stop:
                self._stop()

    def endpoint(self) -> MasterEndpoint | None:
        """The master's endpoint once known (before it is ready), or None if the start
        ended without one. Bounded by the master's own start timeout."""
        return self._context.await_master(self._ended)

    def join(self) -> None:
        """Wait until the start ended (bounded by the master's own start timeout)."""
        self._job.wait()

    def abandon(self) -> None:
        """The caller gives up (Ctrl-C): the master is stopped as soon as it is up, or
        now if it already is."""
        with self._lock:
            self._abandoned = True
            stop = self._over and self.failure is None
        if stop:
            self._stop()
