"""Waiting for a supervised process on an event loop, without a thread: woken by its
state's change notifications, and leaving nothing subscribed when cancelled."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster.errors import FutureTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.actors.process_state import ProcessState
    from actorcluster.runtimes.supervised import SupervisedProcess

__all__ = ["wait_first_run", "wait_state_async"]


async def wait_state_async(
    state: ProcessState, condition: Callable[[], bool], timeout: float | None
) -> bool:
    """Wait until ``condition()`` holds, on the event loop, woken by the state's
    changes; False on timeout. Cancelling it leaves nothing subscribed."""
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake(_: ProcessState) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(changed.set)

    unsubscribe = state.subscribe(wake)
    deadline = Deadline(timeout, clock=loop.time)
    try:
        while True:
            changed.clear()
            if condition():
                return True
            left = deadline.timeout()
            if left is not None and left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
    finally:
        unsubscribe()


async def wait_first_run(
    process: SupervisedProcess, *, wait_running: bool = True, timeout: float = 60.0
) -> None:
    """Await ``process``'s first run, pid known (``wait_running``). Cancelled, or not
    running within ``timeout``, the process is stopped (and awaited gone) before the
    error propagates: nothing is left behind.

    Raises:
        FutureTimeoutError: it did not run within ``timeout``.
        SupervisorGaveUpError: it failed (too many restarts) before it ran.
    """
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    if not wait_running:
        return
    try:
        running = await process.wait_running_async(timeout)
    except BaseException:
        await asyncio.shield(process.stop_async())
        raise
    if running:
        return
    error = process.error
    await asyncio.shield(process.stop_async())
    if error is not None:
        raise error
    raise FutureTimeoutError(f"supervised process {process.key} running", timeout)
