"""Many concurrent requests to one agent over one byte stream: :class:`AgentSession`.

Frames are written whole under one lock; a reader thread routes each reply frame to its
request by id: intermediate frames (OUTPUT, DATA) to the request's frame callback, the
final one (EXIT, RESULT, RAISED, ERROR, PONG) ends the request. Heartbeats run on the
process's shared timer thread: every interval a PING goes out, and silence past the
timeout counts as loss, whether or not data is being sent. A send that makes no
progress for the timeout fails too. When the stream ends or breaks, every pending
request fails with :class:`AgentLostError` naming the host: no request is ever left
pending.

This is the only place besides :mod:`actorcluster.remote.client` that builds frames;
nothing outside ``remote/`` sees a :class:`Kind` or a payload dict.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster._timers import TIMERS
from actorcluster.errors import AgentLostError, AgentStartError
from actorcluster.remote.agent.frames import READY_MARKER, Frame, FrameError, FrameReader, Kind
from actorcluster.remote.agent.frames import encode_frame as _encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster._timers import TimerHandle
    from actorcluster.remote.streams import ByteStream

__all__ = ["FINAL_KINDS", "AgentSession", "Pending"]

log = get_logger(__name__)

FINAL_KINDS = frozenset({Kind.EXIT, Kind.RESULT, Kind.RAISED, Kind.ERROR, Kind.PONG})
"""Reply kinds that end a request."""

_NOISE_LIMIT = 64 * 1024
_SILENT, _ENDED, _BROKEN, _CLOSED = (
    AgentLostError.SILENT,
    AgentLostError.ENDED,
    AgentLostError.BROKEN,
    AgentLostError.CLOSED,
)


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

    def _finish(self, frame: Frame | None, error: BaseException | None) -> None:
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


class AgentSession:
    """Talks to one agent over one byte stream.

    Args:
        stream: the stream the agent's stdin and stdout are on.
        host: the runtime's host, named in every error.
        on_lost: called once, from the reader or the timer thread, when the agent is lost.
        heartbeat_interval: seconds between pings.
        heartbeat_timeout: seconds of silence (or of a send making no progress) after
            which the agent counts as lost.
    """

    def __init__(
        self,
        stream: ByteStream,
        host: str,
        *,
        on_lost: Callable[[AgentLostError], None] | None = None,
        heartbeat_interval: float = 2.0,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.hello: dict[str, Any] = {}
        self._stream = stream
        self._on_lost = on_lost
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._lost_error: AgentLostError | None = None
        self._last_seen = time.monotonic()
        self._ping_wanted = False
        self._heartbeat: TimerHandle | None = None
        self._reader_thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "lost" if self._lost_error is not None else "open"
        return f"<AgentSession {self.host} {state} pending={len(self._pending)}>"

    @property
    def alive(self) -> bool:
        """Whether the agent is still reachable."""
        return self._lost_error is None

    @property
    def pending_count(self) -> int:
        """Requests in flight."""
        return len(self._pending)

    # --- start ----------------------------------------------------------------------

    def start(self, stage_two: bytes, timeout: float) -> dict[str, Any]:
        """Send the second stage, wait for the ready marker and HELLO; start reading.

        Raises:
            AgentStartError: the marker or HELLO did not come in time, or the stream
                ended first; the error carries what the host printed.
        """
        deadline = time.monotonic() + timeout
        try:
            self._stream.sendall(stage_two, timeout)
            leftover = self._await_marker(deadline)
            source = _Prefilled(leftover, self._stream)
            reader = FrameReader(source.recv)
            source.timeout = max(0.01, deadline - time.monotonic())
            frame = reader.read_frame()
            source.timeout = None
        except (OSError, TimeoutError, FrameError) as exc:
            # The agent may have died: let its last words arrive (bounded) for the error.
            raise AgentStartError(self.host, str(exc), self._stream.final_stderr(1.0)) from exc
        if frame is None or frame.kind != Kind.HELLO:
            detail = f"expected HELLO from the agent, got {frame!r}"
            raise AgentStartError(self.host, detail, self._stream.final_stderr(1.0))
        self.hello = frame.payload
        self._last_seen = time.monotonic()
        self._reader_thread = threading.Thread(
            target=self._read_loop,
            args=(reader,),
            name=f"actorcluster-agent-reader-{self.host}",
            daemon=True,
        )
        self._reader_thread.start()
        self._schedule_heartbeat()
        return self.hello

    def _await_marker(self, deadline: float) -> bytes:
        seen = b""
        while READY_MARKER not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the agent's ready marker did not arrive in time")
            data = self._stream.recv(65536, timeout=remaining)
            if not data:
                raise OSError(
                    f"the host closed the stream before the agent started: {seen[-2000:]!r}"
                )
            seen += data
            if len(seen) > _NOISE_LIMIT and READY_MARKER not in seen:
                seen = seen[-len(READY_MARKER) - 4096 :]
        noise, _, rest = seen.partition(READY_MARKER)
        if noise.strip():
            log.info("agent.noise", host=self.host, noise=noise[-500:].decode("utf-8", "replace"))
        return rest

    # --- requests -------------------------------------------------------------------

    def submit(
        self,
        kind: Kind,
        payload: dict[str, Any],
        on_frame: Callable[[Frame], None] | None = None,
    ) -> Pending:
        """Send a request; return it at once.

        Raises:
            AgentLostError: the agent is already gone, or sending failed.
        """
        pending = Pending(next(self._ids), kind, on_frame)
        with self._lock:
            if self._lost_error is not None:
                raise self._lost_error
            self._pending[pending.request_id] = pending
        self.send(kind, pending.request_id, payload)
        return pending

    def send(self, kind: Kind, request_id: int, payload: dict[str, Any]) -> None:
        """Send one frame for an existing request (an upload chunk, a CANCEL).

        Raises:
            AgentLostError: the agent is gone, or the stream took nothing for the
                heartbeat timeout (which loses the agent).
        """
        data = _encode(kind, request_id, payload)
        try:
            with self._send_lock:
                self._stream.sendall(data, self._heartbeat_timeout)
                if self._ping_wanted:
                    self._ping_wanted = False
                    self._send_ping_locked()
        except TimeoutError as exc:
            self._lose(f"the agent took no data for {self._heartbeat_timeout:g} s", _SILENT)
            raise self._lost() from exc
        except OSError as exc:
            self._lose(f"sending to the agent failed: {exc}", _BROKEN)
            raise self._lost() from exc

    def cancel(self, request_id: int) -> None:
        """Ask the agent to stop a request; it then answers ERROR cancelled."""
        if self.alive:
            with contextlib.suppress(AgentLostError):
                self.send(Kind.CANCEL, 0, {"target": request_id})

    # --- reading --------------------------------------------------------------------

    def _read_loop(self, reader: FrameReader) -> None:
        while True:
            try:
                frame = reader.read_frame()
            except TimeoutError:
                continue  # a quiet stream is the heartbeat's to judge
            except FrameError as exc:
                self._lose(f"protocol error: {exc}", _BROKEN)
                return
            except OSError as exc:
                self._lose(f"the stream broke: {exc}", _BROKEN)
                return
            if frame is None:
                self._lose("the agent's stream ended", _ENDED)
                return
            self._last_seen = time.monotonic()
            self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        if frame.kind in FINAL_KINDS:
            with self._lock:
                pending = self._pending.pop(frame.request_id, None)
            if pending is not None:
                pending._finish(frame, None)
            return
        pending = self._pending.get(frame.request_id)
        if pending is not None and pending.on_frame is not None:
            try:
                pending.on_frame(frame)
            except Exception as exc:  # a consumer's bug must not kill the reader
                log.error("agent.frame_callback_failed", host=self.host, error=repr(exc))

    # --- heartbeats -----------------------------------------------------------------

    def _schedule_heartbeat(self) -> None:
        if self._lost_error is None:
            self._heartbeat = TIMERS.call_later(self._heartbeat_interval, self._beat)

    def _beat(self) -> None:
        """On the timer thread: judge silence, then ping (never blocking this thread)."""
        silent = time.monotonic() - self._last_seen
        if silent > self._heartbeat_timeout:
            threading.Thread(
                target=self._lose,
                args=(f"no answer to heartbeats for {silent:.1f} s", _SILENT),
                name="actorcluster-agent-lost",
                daemon=True,
            ).start()
            return
        if self._send_lock.acquire(blocking=False):
            try:
                self._send_ping_locked()
            except (OSError, TimeoutError):
                pass  # the sender's failure is the sender's to report; silence decides
            finally:
                self._send_lock.release()
        else:
            self._ping_wanted = True  # a frame is being sent: ping right after it
        self._schedule_heartbeat()

    def _send_ping_locked(self) -> None:
        pending = Pending(next(self._ids), Kind.PING, None)
        with self._lock:
            if self._lost_error is not None:
                return
            self._pending[pending.request_id] = pending
        self._stream.sendall(_encode(Kind.PING, pending.request_id, {}), 1.0)

    # --- loss and close -------------------------------------------------------------

    def _lost(self) -> AgentLostError:
        return self._lost_error or AgentLostError(self.host, "closed", _CLOSED)

    def _lose(self, reason: str, kind: str) -> None:
        stderr = self._stream.stderr_text().strip()
        if stderr:
            reason = f"{reason}; agent stderr: {stderr[-500:]}"
        error = self._fail_all(reason, kind)
        if error is None:
            return
        log.info("agent.lost", host=self.host, reason=reason)
        self._stream.abort()
        if self._on_lost is not None:
            self._on_lost(error)

    def _fail_all(self, reason: str, kind: str) -> AgentLostError | None:
        """Mark the session lost and fail every pending request; None if it already was."""
        with self._lock:
            if self._lost_error is not None:
                return None
            error = self._lost_error = AgentLostError(self.host, reason, kind)
            pending, self._pending = self._pending, {}
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for request in pending.values():
            request._finish(None, AgentLostError(self.host, reason, kind))
        return error

    def close(self, reason: str = "closed by the client") -> None:
        """Close the stream (the agent then cleans up on its side); fail what is pending."""
        with self._lock:
            self._on_lost = None
        self._fail_all(reason, _CLOSED)
        with contextlib.suppress(OSError):
            self._stream.close()
        reader = self._reader_thread
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        self._stream.release()


class _Prefilled:
    """A recv function that first returns bytes already read past the ready marker."""

    def __init__(self, leftover: bytes, stream: ByteStream) -> None:
        self._leftover = leftover
        self._stream = stream
        self.timeout: float | None = None

    def recv(self, size: int) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:size], self._leftover[size:]
            return data
        return self._stream.recv(size, timeout=self.timeout)
