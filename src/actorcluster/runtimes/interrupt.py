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

from actorcluster.actors.task import CANCEL_GRACE

if TYPE_CHECKING:
    from actorcluster.futures import ActorFuture
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["wait_interruptibly"]


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
