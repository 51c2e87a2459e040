"""Futures handed back by every call that takes time, and ways to wait on many.

:class:`ActorFuture` is a pykka future (``get(timeout=...)``, ``join``, ``map``) that
also behaves as a :class:`concurrent.futures.Future` does where a service or a notebook
expects it to: ``result``/``exception``/``done``/``cancel``/``add_done_callback``, and
``await future`` from asyncio without blocking the event loop (pykka's own ``await``
blocks the loop's thread). Cancelling reaches the host: a task's future cancels the
task (its remote process group is killed), and so does a coroutine awaiting it when
the coroutine is cancelled (``asyncio.wait_for`` timing out, say); await
:meth:`ActorFuture.detach` instead to stop waiting without cancelling the work. A timeout raises
:class:`~actorcluster.errors.FutureTimeoutError`, a ``TimeoutError`` (and a
``pykka.Timeout``). Done callbacks run on the thread that resolves the future: for the
futures of tasks that is the task's actor, never an I/O thread.

:func:`wait` and :func:`as_completed` fan in many futures, as their
:mod:`concurrent.futures` namesakes do.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import pykka

from actorcluster._limits import Deadline
from actorcluster.errors import (
    ActorClusterError,
    FutureTimeoutError,
    TaskCancelledError,
    UsageError,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Generator, Iterable, Iterator

    from pykka._types import OptExcInfo

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ActorFuture",
    "DoneAndNotDone",
    "as_completed",
    "wait",
]

T = TypeVar("T")

FIRST_COMPLETED = "FIRST_COMPLETED"
""":func:`wait` returns when any future is done."""
FIRST_EXCEPTION = "FIRST_EXCEPTION"
""":func:`wait` returns when any future failed, or all are done."""
ALL_COMPLETED = "ALL_COMPLETED"
""":func:`wait` returns when every future is done."""


class ActorFuture(pykka.ThreadingFuture[T], Generic[T]):
    """A pykka future with done callbacks, cancellation and a non-blocking ``await``.

    Args:
        what: what it is the future of, for ``repr`` (``"task 'train' on host-1"``).
    """

    def __init__(self, what: str = "") -> None:
        super().__init__()
        self.what = what
        """What it is the future of."""
        self._callbacks: list[Callable[[ActorFuture[T]], None]] = []
        self._callbacks_lock = threading.Lock()
        self._done = False
        self._canceller: Callable[[], None] | None = None

    def __repr__(self) -> str:
        what = f" {self.what}" if self.what else ""
        return f"<ActorFuture{what} {self._state()}>"

    def _repr_html_(self) -> str:
        """A notebook's view: what it is of, its state, and its value or error."""
        from actorcluster._html import summary_table

        state = self._state()
        rows: list[tuple[str, object]] = []
        if self._done:
            error = self._error()
            if error is not None:
                rows.append(("error", str(error)))
            else:
                value = self.get(timeout=0)
                rows.append(("value", repr(value)))
        return summary_table("Future", self.what or "-", state, rows)

    def _state(self) -> str:
        if not self._done:
            return "pending"
        error = self._error()
        if error is None:
            return "done"
        if isinstance(error, TaskCancelledError):
            return "cancelled"
        return f"failed: {type(error).__name__}"

    # --- resolving (the engine) -----------------------------------------------------

    def set(self, value: Any | None = None) -> None:
        """Resolve the future with ``value``; runs the done callbacks."""
        super().set(value)
        self._run_callbacks()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Fail the future; ``exc_info`` defaults to the exception being handled."""
        super().set_exception(exc_info)
        self._run_callbacks()

    def fail(self, error: BaseException) -> None:
        """Fail the future with ``error`` (a convenience over :meth:`set_exception`)."""
        self.set_exception((type(error), error, error.__traceback__))

    def set_canceller(self, cancel: Callable[[], None]) -> None:
        """What :meth:`cancel` does (a task's: stop it on the host)."""
        self._canceller = cancel

    # --- waiting (the user) ---------------------------------------------------------

    def get(self, *, timeout: float | None = None) -> Any:
        """The value, waiting up to ``timeout`` seconds; raises what the work raised.

        Raises:
            FutureTimeoutError: not done in time (a ``TimeoutError``); the work goes on.
        """
        try:
            return super().get(timeout=timeout)
        except pykka.Timeout:
            raise FutureTimeoutError(self.what or "the work", timeout or 0.0) from None
        except ActorClusterError as error:
            # Our own errors say what happened; the engine's frames would only add noise.
            raise error.with_traceback(None)  # noqa: B904 - it is the same error

    def result(self, timeout: float | None = None) -> T:
        """:meth:`get` (``concurrent.futures`` spelling)."""
        value: T = self.get(timeout=timeout)
        return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error the work failed with, or None once it succeeded.

        Raises:
            FutureTimeoutError: not done in time.
        """
        try:
            self.get(timeout=timeout)
        except FutureTimeoutError:
            raise
        except BaseException as error:  # the work's own failure is the answer
            return error
        return None

    def done(self) -> bool:
        """Whether the future has a value or an exception."""
        return self._done

    def running(self) -> bool:
        """Whether the work is still going on."""
        return not self._done

    def cancel(self) -> bool:
        """Ask the work to stop (a task's remote process group is killed); the future
        then fails with :class:`~actorcluster.errors.TaskCancelledError`. False if it
        is done already or cannot be cancelled."""
        canceller = self._canceller
        if self._done or canceller is None:
            return False
        canceller()
        return True

    def detach(self) -> ActorFuture[T]:
        """A future with this one's outcome that does not own the work: cancelling it,
        or cancelling a coroutine that awaits it (``asyncio.wait_for`` timing out, an
        HTTP client that went away), only stops the waiting; the work goes on, and
        this future still tells how it ended::

            try:
                task = await asyncio.wait_for(future.detach(), 5)
            except TimeoutError:
                return "still running"  # the job goes on on its host
        """
        detached: ActorFuture[T] = ActorFuture(self.what)

        def relay(done: ActorFuture[T]) -> None:
            result = done._result
            assert result is not None
            if result.exc_info is not None:
                detached.set_exception(result.exc_info)
            else:
                detached.set(result.value)

        self.add_done_callback(relay)
        return detached

    def cancelled(self) -> bool:
        """Whether the work ended by being cancelled."""
        return self._done and isinstance(self._error(), TaskCancelledError)

    def _error(self) -> BaseException | None:
        result = self._result
        if result is None or result.exc_info is None:
            return None
        return result.exc_info[1]

    def add_done_callback(self, callback: Callable[[ActorFuture[T]], None]) -> None:
        """Call ``callback(self)`` once the future is done (at once, here, if it is).

        Callbacks run on the thread that resolves the future (a task's actor): keep
        them short.
        """
        with self._callbacks_lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def _run_callbacks(self) -> None:
        with self._callbacks_lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not waiter.done():
                waiter.set_result(None)

        def wake(_: ActorFuture[T]) -> None:
            loop.call_soon_threadsafe(resolve)

        self.add_done_callback(wake)
        try:
            yield from waiter.__await__()
        except asyncio.CancelledError:
            self.cancel()  # the awaiting coroutine was cancelled: so is the work
            raise
        return self.get(timeout=0)  # type: ignore[no-any-return]

    __iter__ = __await__


class DoneAndNotDone(NamedTuple):
    """What :func:`wait` returns."""

    done: set[ActorFuture[Any]]
    """The futures that are done."""
    not_done: set[ActorFuture[Any]]
    """The others."""


def wait(
    futures: Iterable[ActorFuture[Any]],
    timeout: float | None = None,
    return_when: str = ALL_COMPLETED,
) -> DoneAndNotDone:
    """Wait until the futures are done (all, the first, or the first that failed, as
    ``return_when`` says) or ``timeout`` passed; never raises what they raised."""
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        choices = "FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED"
        raise UsageError(f"return_when must be {choices}, not {return_when!r}")
    pending = set(futures)
    condition = threading.Condition()

    def enough() -> bool:
        done = {future for future in pending if future.done()}
        if return_when == FIRST_COMPLETED:
            return bool(done)
        if return_when == FIRST_EXCEPTION and any(f.exception(0) is not None for f in done):
            return True
        return len(done) == len(pending)

    def wake(_: ActorFuture[Any]) -> None:
        with condition:
            condition.notify_all()

    for future in pending:
        future.add_done_callback(wake)
    with condition:
        condition.wait_for(enough, timeout)
    done = {future for future in pending if future.done()}
    return DoneAndNotDone(done, pending - done)


def _more_than(finished: list[ActorFuture[Any]], count: int) -> bool:
    return len(finished) > count


def as_completed(
    futures: Iterable[ActorFuture[Any]], timeout: float | None = None
) -> Iterator[ActorFuture[Any]]:
    """Yield each future as it finishes (each once, in the order they finish).

    Raises:
        FutureTimeoutError: ``timeout`` passed with futures still pending.
    """
    pending = set(futures)
    finished: list[ActorFuture[Any]] = []
    condition = threading.Condition()
    deadline = Deadline(timeout)

    def collect(future: ActorFuture[Any]) -> None:
        with condition:
            finished.append(future)
            condition.notify_all()

    for future in pending:
        future.add_done_callback(collect)
    yielded = 0
    while yielded < len(pending):
        with condition:
            left = deadline.timeout()
            if not condition.wait_for(functools.partial(_more_than, finished, yielded), left):
                what = f"{len(pending) - yielded} of {len(pending)} futures"
                raise FutureTimeoutError(what, timeout or 0.0)
            batch = finished[yielded:]
        for future in batch:
            yielded += 1
            yield future
