"""Connecting a group's hosts: how many must come up (``require``), one host's try
(:func:`connect_once`), and awaiting work from asyncio so that a cancel leaves
nothing behind (:func:`settle`, :func:`outcome`).

A coroutine cancelled while a worker thread connects cannot stop that thread; what it
can do is wait for the thread's step to end and then undo what the step made. Every
step of :meth:`RuntimeGroup.connect <actorcluster.groups.RuntimeGroup.connect>` is
awaited through :func:`settle`, and the group records each runtime it starts before
starting it, so a cancel at any point stops exactly what exists.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from actorcluster.errors import ActorClusterError, InvalidRuntimeError, UsageError
from actorcluster.runtimes.handle import START_TIMEOUT, RuntimeHandle
from actorcluster.runtimes.ledger import TaskLedger
from actorcluster.runtimes.options import build_options
from actorcluster.runtimes.paths import needs_expansion

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable, Mapping

    import pykka

    from actorcluster.futures import ActorFuture
    from actorcluster.runtimes import Runtime

__all__ = ["Require", "connect_once", "needed", "outcome", "settle", "split_working_dir"]

T = TypeVar("T")

Require = str | int
"""``"all"``, ``"any"`` or a number of hosts."""


def needed(require: object, count: int) -> int:
    """How many of ``count`` hosts must come up for a group to start.

    Raises:
        UsageError: ``require`` is not ``"all"``, ``"any"`` or a number from 1 to ``count``.
    """
    if require == "all":
        return count
    if require == "any":
        return min(1, count)
    if isinstance(require, int) and not isinstance(require, bool) and 1 <= require <= count:
        return require
    raise UsageError(
        f'require must be "all", "any" or a number of hosts from 1 to {count}, not {require!r}'
    )


def split_working_dir(working_dir: str | None) -> tuple[str | None, str | None]:
    """(what a runtime starts in, what it moves to once up): a ``$VAR`` working dir is
    expanded with the host's environment, so it is entered after the start."""
    if isinstance(working_dir, str) and needs_expansion(working_dir):
        return None, working_dir
    return working_dir, None


def start_handle(
    host: str,
    working_dir: str | None,
    connection_kwargs: Mapping[str, Any],
    supervisor: pykka.ActorRef[Any],
) -> RuntimeHandle:
    """A handle for ``host`` under ``supervisor``, not started yet.

    Raises:
        ConfigurationError: a connection setting is wrong.
    """
    start_in, _ = split_working_dir(working_dir)
    return RuntimeHandle(build_options(host, start_in, connection_kwargs), supervisor)


def finish_start(
    handle: RuntimeHandle,
    working_dir: str | None,
    retain_tasks: int | None,
    timeout: float = START_TIMEOUT,
) -> Runtime:
    """The runtime of a handle whose start is done (its working dir entered); one
    still starting is stopped (it took longer than ``timeout``).

    Raises:
        InvalidRuntimeError, PathCreationError: it did not come up (nothing is left).
    """
    from actorcluster.runtimes import Runtime

    if not handle.context.startup.done():
        handle.stop()
        raise InvalidRuntimeError(handle.host, f"it did not come up within {timeout:g} s")
    handle.wait_started(0)
    runtime = Runtime._over(handle, TaskLedger(retain_tasks))
    runtime._move_to(split_working_dir(working_dir)[1])
    return runtime


def connect_once(
    host: str,
    abandon: threading.Event,
    *,
    working_dir: str | None,
    connection_kwargs: Mapping[str, Any],
    supervisor: pykka.ActorRef[Any],
    retain_tasks: int | None,
    timeout: float = START_TIMEOUT,
) -> Runtime | None:
    """Connect ``host`` once, under ``supervisor``; None if ``abandon`` was set first
    (the start is stopped: nothing is left).

    Raises:
        InvalidRuntimeError, PathCreationError, ConfigurationError: it did not come up.
    """
    handle = start_handle(host, working_dir, connection_kwargs, supervisor)
    startup = handle.start_async()
    startup.add_done_callback(lambda _: abandon.set())
    if not abandon.wait(timeout) or not startup.done():
        handle.stop()
        if abandon.is_set():
            return None
        raise InvalidRuntimeError(host, f"it did not come up within {timeout:g} s")
    return finish_start(handle, working_dir, retain_tasks, timeout)


async def outcome(future: ActorFuture[Any]) -> None:
    """Wait until ``future`` is done, without blocking the loop and without cancelling
    the work when the awaiting coroutine is cancelled (its value is not read)."""
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


def errors_note(errors: list[ActorClusterError]) -> ActorClusterError:
    """The first error, with the others named in its notes (Python 3.11+)."""
    first = errors[0]
    if hasattr(first, "add_note"):
        for other in errors[1:]:
            first.add_note(f"also: {other}")
    return first


def run_all(calls: list[Callable[[], None]]) -> None:
    """Run each call, all of them even if some raise (clean-up)."""
    for call in calls:
        try:
            call()
        except ActorClusterError:
            continue
