"""One request to the agent in flight: :class:`Pending`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.remote.agent.frames import Frame, Kind

__all__ = ["Pending"]

log = get_logger(__name__)


class Pending:
    """One request in flight: its final frame (or the error that ended it) once done.

    Done callbacks run on the thread that completes the request (the session's reader,
    or whoever closes the session): internal code only, quick, never user code.
    """

    __slots__ = (
        "_callbacks",
        "_done",
        "_error",
        "_event",
        "_frame",
        "_lock",
        "kind",
        "on_frame",
        "request_id",
    )

    def __init__(
        self, request_id: int, kind: Kind, on_frame: Callable[[Frame], None] | None
    ) -> None:
        self.request_id = request_id
        self.kind = kind
        self.on_frame = on_frame
        self._frame: Frame | None = None
        self._error: BaseException | None = None
        self._done = False
        self._lock = threading.Lock()
        self._event: threading.Event | None = None
        """Made only for someone who waits (most requests are awaited by callback)."""
        self._callbacks: list[Callable[[Pending], None]] = []

    def __repr__(self) -> str:
        return (
            f"<Pending {self.kind.name} #{self.request_id} {'done' if self._done else 'pending'}>"
        )

    def done(self) -> bool:
        """Whether the request ended."""
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the request ended; False if ``timeout`` passed first."""
        with self._lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def outcome(self) -> Frame:
        """The final frame; raises the error that ended the request instead, if any."""
        if self._error is not None:
            raise self._error
        assert self._frame is not None, "outcome() of a pending request"
        return self._frame

    def add_done_callback(self, callback: Callable[[Pending], None]) -> None:
        """Call ``callback(self)`` when done (at once, here, if it already is)."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def finish(self, frame: Frame | None, error: BaseException | None) -> None:
        """End the request with its final frame, or with the error that ended it
        (the first call wins); run the done callbacks."""
        with self._lock:
            if self._done:
                return
            self._frame, self._error, self._done = frame, error, True
            callbacks, self._callbacks = self._callbacks, []
            event = self._event
        if event is not None:
            event.set()
        for callback in callbacks:
            try:
                callback(self)
            except Exception as exc:  # one broken callback must not take the reader down
                log.error("agent.done_callback_failed", request=repr(self), error=repr(exc))
