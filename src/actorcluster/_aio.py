"""Awaiting blocking work from asyncio so that a cancel leaves nothing behind.

A coroutine cancelled while a worker thread does something (connects, starts an actor)
cannot stop that thread; what it can do is wait for the thread's step to end and then
undo what the step made. :func:`settle` does that; :func:`outcome` waits for an
:class:`~actorcluster.futures.ActorFuture` without cancelling its work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from actorcluster.futures import ActorFuture

__all__ = ["outcome", "settle"]

T = TypeVar("T")


async def outcome(future: ActorFuture[Any]) -> None:
    """Wait until ``future`` is done, without blocking the loop and without cancelling
    the work when the awaiting coroutine is cancelled (its value is not read)."""
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def resolve() -> None:
        if not waiter.done():
            waiter.set_result(None)

    def wake(_: ActorFuture[Any]) -> None:
        loop.call_soon_threadsafe(resolve)

    future.add_done_callback(wake)
    await waiter


async def settle(work: Awaitable[T], undo: Callable[[T], None] | None = None) -> T:
    """Await ``work`` to its end even if the awaiting coroutine is cancelled meanwhile
    (a worker thread cannot be stopped halfway); then raise the cancel, so the caller
    undoes what the work made. ``undo(result)``, if given, runs (on a thread) when the
    work succeeded but the cancel came first.

    Raises:
        asyncio.CancelledError: the awaiting coroutine was cancelled (after the work ended).
        Whatever the work raised, when not cancelled.
    """
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # ours: the work goes on, and is waited for
        except BaseException:  # the work's own error, read below
            pass
    if cancelled:
        if not task.cancelled() and task.exception() is None and undo is not None:
            await settle(asyncio.to_thread(undo, task.result()))
        raise asyncio.CancelledError
    return task.result()
