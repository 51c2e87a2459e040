"""Futures handed back by every call that takes time.

:class:`ActorFuture` is a pykka :class:`~pykka.ThreadingFuture` (``get(timeout=...)``,
``join``, ``map``) that can also be awaited from asyncio without blocking the event
loop: pykka's own ``__await__`` blocks the loop's thread until the value arrives.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pykka

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from pykka._types import OptExcInfo

__all__ = ["ActorFuture"]

T = TypeVar("T")


class ActorFuture(pykka.ThreadingFuture[T], Generic[T]):
    """A pykka future with done-callbacks and a non-blocking ``await``."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[ActorFuture[T]], None]] = []
        self._callbacks_lock = threading.Lock()
        self._done = False

    def set(self, value: Any | None = None) -> None:
        """Resolve the future with ``value``; runs the done-callbacks."""
        super().set(value)
        self._run_callbacks()

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Fail the future; ``exc_info`` defaults to the exception being handled."""
        super().set_exception(exc_info)
        self._run_callbacks()

    def fail(self, error: BaseException) -> None:
        """Fail the future with ``error`` (a convenience over :meth:`set_exception`)."""
        self.set_exception((type(error), error, error.__traceback__))

    def done(self) -> bool:
        """Whether the future has a value or an exception."""
        return self._done

    def add_done_callback(self, callback: Callable[[ActorFuture[T]], None]) -> None:
        """Call ``callback(self)`` once the future is done (at once if it already is).

        Callbacks run on the thread that resolves the future: keep them short.
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
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not waiter.done():
                waiter.set_result(None)

        def wake(_: ActorFuture[T]) -> None:
            loop.call_soon_threadsafe(resolve)

        self.add_done_callback(wake)
        yield from waiter.__await__()
        return self.get(timeout=0)  # type: ignore[no-any-return]

    __iter__ = __await__
