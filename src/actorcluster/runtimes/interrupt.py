"""Waiting on a task in the caller's thread, so that Ctrl-C stops it on the host too.

A notebook's stop button, or Ctrl-C in a script, raises ``KeyboardInterrupt`` in the
thread waiting on a synchronous call. Left alone, the remote command would run on and
the task would count as running. :func:`wait_interruptibly` stops the task first (its
remote process group is killed, and it ends as cancelled), waits a bounded moment for
that, then lets the ``KeyboardInterrupt`` go on.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from actorcluster._limits import Deadline
from actorcluster.actors.task import CANCEL_GRACE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from actorcluster.futures import ActorFuture
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["stop_all", "wait_interruptibly"]


def wait_interruptibly(future: ActorFuture[Any], task: RuntimeTask) -> Any:
    """``future.get()``; on ``KeyboardInterrupt`` stop ``task`` on the host, then re-raise.

    Raises:
        KeyboardInterrupt: the wait was interrupted (the task was stopped).
        Exception: whatever the task failed with.
    """
    try:
        return future.get()
    except KeyboardInterrupt:
        task.stop("interrupted (KeyboardInterrupt)")
        with contextlib.suppress(Exception):  # its end is the cancellation asked for
            future.get(timeout=CANCEL_GRACE + 1.0)
        raise


def stop_all(futures: Iterable[ActorFuture[Any]]) -> None:
    """Cancel each future's task on its host (a group's synchronous call was
    interrupted) and wait a bounded moment for them to end."""
    futures = list(futures)
    for future in futures:
        future.cancel()
    deadline = Deadline(CANCEL_GRACE + 1.0)
    for future in futures:
        with contextlib.suppress(Exception):  # each end is the cancellation asked for
            future.get(timeout=deadline.remaining())
