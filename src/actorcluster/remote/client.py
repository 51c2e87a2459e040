"""The client side of the agent protocol: many concurrent requests over one stream.

:class:`AgentClient` writes request frames (one lock, whole frames) and a reader thread
routes every reply frame to its request by id: intermediate frames (OUTPUT, DATA) to
the request's callback, the final one (EXIT, RESULT, RAISED, ERROR, PONG) to its future.
A heartbeat thread pings the agent; silence past the timeout counts as loss. When the
stream ends or breaks, every pending request fails with :class:`AgentLostError` naming
the host: no request is ever left pending.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.errors import (
    AgentLostError,
    AgentStartError,
    ProtocolError,
    RequestTimeoutError,
)
from actorcluster.futures import ActorFuture
from actorcluster.remote.agent.frames import READY_MARKER, Frame, FrameError, FrameReader, Kind
from actorcluster.remote.agent.frames import encode_frame as _encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.remote.streams import ByteStream

__all__ = ["FINAL_KINDS", "AgentClient", "Request"]

log = get_logger(__name__)

FINAL_KINDS = frozenset({Kind.EXIT, Kind.RESULT, Kind.RAISED, Kind.ERROR, Kind.PONG})
"""Reply kinds that end a request."""

_NOISE_LIMIT = 64 * 1024


class Request:
    """One request in flight: its id, its future (the final frame), its frame callback."""

    __slots__ = ("future", "on_frame", "request_id")

    def __init__(self, request_id: int, on_frame: Callable[[Frame], None] | None) -> None:
        self.request_id = request_id
        self.future: ActorFuture[Frame] = ActorFuture()
        self.on_frame = on_frame


class AgentClient:
    """Talks to one agent over one byte stream.

    Args:
        stream: the stream the agent's stdin and stdout are on.
        host: the runtime's host, named in every error.
        on_lost: called once, from the reader or heartbeat thread, when the agent is lost.
        heartbeat_interval: seconds between pings.
        heartbeat_timeout: seconds of silence after which the agent counts as lost.
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
        self._pending: dict[int, Request] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._lost_error: AgentLostError | None = None
        self._last_seen = time.monotonic()
        self._reader: FrameReader | None = None
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "open"
        return f"<AgentClient {self.host} {state} pending={len(self._pending)}>"

    @property
    def alive(self) -> bool:
        """Whether the agent is still reachable."""
        return not self._closed.is_set()

    # --- start ----------------------------------------------------------------------

    def start(self, stage_two: bytes, timeout: float) -> dict[str, Any]:
        """Send the second stage, wait for the ready marker and HELLO; start the threads.

        Raises:
            AgentStartError: the marker or HELLO did not come in time, or the stream
                ended first; the error carries what the host printed.
        """
        deadline = time.monotonic() + timeout
        try:
            self._stream.sendall(stage_two)
            leftover = self._await_marker(deadline)
            source = _Prefilled(leftover, self._stream)
            self._reader = FrameReader(source.recv)
            hello = self._read_hello(source, deadline)
        except (OSError, TimeoutError, FrameError) as exc:
            # The agent may have died: let its last words arrive (bounded) for the error.
            stderr = self._stream.final_stderr(1.0)
            raise AgentStartError(self.host, str(exc), stderr) from exc
        self.hello = hello
        self._start_threads()
        return hello

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

    def _read_hello(self, source: _Prefilled, deadline: float) -> dict[str, Any]:
        assert self._reader is not None
        source.timeout = max(0.01, deadline - time.monotonic())  # for this frame only
        frame = self._reader.read_frame()
        source.timeout = None
        if frame is None or frame.kind != Kind.HELLO:
            raise FrameError(f"expected HELLO from the agent, got {frame!r}")
        return frame.payload

    def _start_threads(self) -> None:
        self._last_seen = time.monotonic()
        reader = threading.Thread(
            target=self._read_loop, name=f"actorcluster-agent-reader-{self.host}", daemon=True
        )
        heart = threading.Thread(
            target=self._heartbeat_loop, name=f"actorcluster-heartbeat-{self.host}", daemon=True
        )
        self._threads = [reader, heart]
        for thread in self._threads:
            thread.start()

    # --- requests -------------------------------------------------------------------

    def submit(
        self,
        kind: Kind,
        payload: dict[str, Any],
        on_frame: Callable[[Frame], None] | None = None,
    ) -> Request:
        """Send a request; return it at once. Its future gets the final frame.

        Raises:
            AgentLostError: the agent is already gone.
        """
        request = Request(next(self._ids), on_frame)
        with self._lock:
            if self._lost_error is not None:
                raise self._lost_error
            self._pending[request.request_id] = request
        self.send(kind, request.request_id, payload)
        return request

    def send(self, kind: Kind, request_id: int, payload: dict[str, Any]) -> None:
        """Send one frame for an existing request (e.g. an upload chunk)."""
        data = _encode(kind, request_id, payload)
        try:
            with self._send_lock:
                self._stream.sendall(data)
        except OSError as exc:
            self._lose(f"sending to the agent failed: {exc}")
            raise self._lost() from exc

    def call(self, kind: Kind, payload: dict[str, Any], timeout: float | None = None) -> Frame:
        """Send a request and wait for its final frame.

        Raises:
            RequestTimeoutError: no final frame within ``timeout`` (the request is
                cancelled on the agent).
            AgentLostError: the agent went away meanwhile.
        """
        return self.wait(self.submit(kind, payload), timeout, kind.name)

    def wait(self, request: Request, timeout: float | None, what: str = "a request") -> Frame:
        """Wait for a submitted request's final frame, like :meth:`call`."""
        try:
            frame: Frame = request.future.get(timeout=timeout)
        except pykka.Timeout:
            self.cancel(request.request_id)
            raise RequestTimeoutError(self.host, what, timeout or 0.0) from None
        return frame

    def cancel(self, request_id: int) -> None:
        """Ask the agent to stop a request; its final frame will be ERROR cancelled."""
        if self.alive:
            with contextlib.suppress(AgentLostError):
                self.send(Kind.CANCEL, 0, {"target": request_id})

    # --- reading --------------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self._reader is not None
        while True:
            try:
                frame = self._reader.read_frame()
            except FrameError as exc:
                error = ProtocolError(f"{self.host}: {exc}")
                self._lose(str(error))
                return
            except OSError as exc:
                self._lose(f"the stream broke: {exc}")
                return
            if frame is None:
                self._lose("the agent's stream ended")
                return
            self._last_seen = time.monotonic()
            self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        if frame.kind in FINAL_KINDS:
            with self._lock:
                request = self._pending.pop(frame.request_id, None)
            if request is not None:
                request.future.set(frame)
            return
        request = self._pending.get(frame.request_id)
        if request is not None and request.on_frame is not None:
            try:
                request.on_frame(frame)
            except Exception:  # a consumer's bug must not kill the reader
                log.exception("agent.frame_callback_failed", host=self.host, kind=frame.kind)

    def _heartbeat_loop(self) -> None:
        while not self._closed.wait(self._heartbeat_interval):
            silent = time.monotonic() - self._last_seen
            if silent > self._heartbeat_timeout:
                self._lose(f"no answer to heartbeats for {silent:.1f} s")
                return
            try:
                self.submit(Kind.PING, {})
            except AgentLostError:
                return

    # --- loss and close -------------------------------------------------------------

    def _lost(self) -> AgentLostError:
        return self._lost_error or AgentLostError(self.host, "closed")

    def _lose(self, reason: str) -> None:
        stderr = self._stream.stderr_text().strip()
        if stderr:
            reason = f"{reason}; agent stderr: {stderr[-500:]}"
        with self._lock:
            if self._lost_error is not None:
                return
            self._lost_error = AgentLostError(self.host, reason)
            pending, self._pending = self._pending, {}
        self._closed.set()
        log.info("agent.lost", host=self.host, reason=reason, pending=len(pending))
        for request in pending.values():
            request.future.fail(AgentLostError(self.host, reason))
        if self._on_lost is not None:
            self._on_lost(self._lost_error)

    def close(self, reason: str = "closed by the client") -> None:
        """Close the stream; the agent cleans up on its side. Fails pending requests."""
        with self._lock:
            if self._lost_error is None:
                self._lost_error = AgentLostError(self.host, reason)
                self._on_lost = None
        self._closed.set()
        with contextlib.suppress(OSError):
            self._stream.close()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5)
        with self._lock:
            pending, self._pending = self._pending, {}
        for request in pending.values():
            request.future.fail(AgentLostError(self.host, reason))
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
