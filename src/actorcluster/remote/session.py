"""Many concurrent requests to one agent, over a stream that a reconnect may replace.

:class:`AgentSession` writes request frames whole under one lock and reads replies on
one reader thread, routing each to its request by id: intermediate frames (OUTPUT,
DATA) to the request's frame callback, the final one (EXIT, RESULT, RAISED, ERROR,
PONG) ends the request. Heartbeats run on the process's shared timer thread: every
interval a PING goes out, and silence past the timeout counts as the stream's loss,
whether or not data is being sent; a send that makes no progress for the timeout too.

The session outlives its stream (the agent's side is :mod:`.agent.links`). What was
sent and received is kept in its :class:`~actorcluster.remote.ledger.SessionLedger`,
so a reconnect (:meth:`AgentSession.reattach`) resends what the agent missed: running
commands go on, their output and results arrive after the re-attach, nothing is lost
and nothing runs twice. This module is the wire side: the stream, the reader thread,
heartbeats, losing and re-attaching a stream (the first contact on a new stream is
:mod:`.handshake`'s). While detached, pending requests wait; new ones are kept and
sent on re-attach; an upload (which would have to wait for room) fails at once. If no
re-attach comes within the session's grace period, every pending request fails with
:class:`~actorcluster.errors.AgentLostError` naming the host: none is left pending.

This is the only place besides :mod:`actorcluster.remote.client` that builds frames.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from actorcluster._limits import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Deadline
from actorcluster._logging import get_logger
from actorcluster._timers import TIMERS
from actorcluster._workers import THREADS
from actorcluster.errors import AgentLostError, AgentStartError
from actorcluster.remote.agent.frames import (
    CONTROL_KINDS,
    Frame,
    FrameError,
    FrameReader,
    Kind,
    encode_frame,
)
from actorcluster.remote.handshake import Prefilled, await_marker, read_first
from actorcluster.remote.ledger import SessionLedger
from actorcluster.remote.pending import Pending

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from actorcluster._timers import TimerHandle
    from actorcluster._workers import Job
    from actorcluster.remote.streams import ByteStream

__all__ = ["AGENT_REQUEST_KINDS", "BATCH_BYTES", "FINAL_KINDS", "AgentSession", "Pending"]

log = get_logger(__name__)

FINAL_KINDS = frozenset({Kind.EXIT, Kind.RESULT, Kind.RAISED, Kind.ERROR, Kind.PONG})
"""Reply kinds that end a request."""
AGENT_REQUEST_KINDS = frozenset({Kind.MODULE, Kind.MODULE_VERSION})
"""Frames the agent sends of its own accord, with ids of its own: they go to
:attr:`AgentSession.on_request`, never to a request of the client's."""

_CLOSE_WAIT = 3.0
"""Seconds :meth:`Session.close` waits for the agent to end what it started (its
groups' grace, then SIGKILL) before it closes the stream anyway."""


def _encode(kind: Kind, request_id: int, payload: dict[str, Any]) -> bytes:
    """A frame the client built itself (plain data by construction: not checked)."""
    return encode_frame(kind, request_id, payload, check=False)


BATCH_BYTES = 64 * 1024
"""Most bytes of queued frames joined into one write (a larger frame goes alone)."""


def _batches(frames: list[bytes]) -> Iterator[bytes]:
    """``frames`` in order, small neighbours joined (up to :data:`BATCH_BYTES`): one
    SSH packet for many requests sent at once, and no copy of a large frame."""
    if len(frames) == 1:
        yield frames[0]
        return
    group: list[bytes] = []
    size = 0
    for data in frames:
        if group and size + len(data) > BATCH_BYTES:
            yield group[0] if len(group) == 1 else b"".join(group)
            group, size = [], 0
        group.append(data)
        size += len(data)
    if group:
        yield group[0] if len(group) == 1 else b"".join(group)


_SILENT, _ENDED, _BROKEN, _CLOSED = (
    AgentLostError.SILENT,
    AgentLostError.ENDED,
    AgentLostError.BROKEN,
    AgentLostError.CLOSED,
)


class AgentSession:
    """Talks to one agent, across reconnects.

    Args:
        host: the runtime's host, named in every error.
        on_lost: called (from the reader or the timer thread) each time the stream is
            lost; the error's ``kind`` says how. The session may live on (see
            :attr:`resumable`): then a :meth:`reattach` brings it back.
        heartbeat_interval: seconds between pings.
        heartbeat_timeout: seconds of silence (or of a send making no progress) after
            which the stream counts as lost.
        grace: seconds the session waits for a re-attach before its requests fail
            (0: they fail at once; the agent must be told the same grace in SETUP).
    """

    def __init__(
        self,
        host: str,
        *,
        on_lost: Callable[[AgentLostError], None] | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        grace: float = 0.0,
    ) -> None:
        self.host = host
        self.hello: dict[str, Any] = {}
        self.grace = grace
        self._on_lost = on_lost
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._stream: ByteStream | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._ledger = SessionLedger()
        self._outbox: list[bytes] = []
        """Data frames numbered and kept but not yet written (under ``_lock``): whoever
        holds the send lock writes them, so a sender never waits on another's write."""
        self._ack_wanted = False
        self._ping_wanted = False
        self._lost_error: AgentLostError | None = None
        self._detached: AgentLostError | None = None
        self._last_seen = time.monotonic()
        self._heartbeat: TimerHandle | None = None
        self._give_up: TimerHandle | None = None
        self._reader_job: Job | None = None
        self.on_request: Callable[[Frame], None] | None = None
        """Takes the agent's own requests (a module it lacks), on the reader thread: it
        must only hand them over (see :class:`~actorcluster.remote.modules.ModuleServer`);
        without it they are dropped."""

    def __repr__(self) -> str:
        state = "lost" if self._lost_error else "detached" if self._detached else "attached"
        return f"<AgentSession {self.host} {state} pending={len(self._pending)}>"

    @property
    def alive(self) -> bool:
        """Whether the agent is reachable now (attached and not lost)."""
        return self._lost_error is None and self._detached is None and self._stream is not None

    @property
    def lost(self) -> bool:
        """Whether the session is over (its requests failed)."""
        return self._lost_error is not None

    @property
    def resumable(self) -> bool:
        """Whether a reconnect may re-attach to it (it has a grace and is not lost)."""
        return self.grace > 0 and not self.lost and "session" in self.hello

    @property
    def address(self) -> dict[str, Any]:
        """Where the agent accepts re-attaches: ``socket``, ``secret``, ``pid``."""
        return dict(self.hello.get("session") or {})

    @property
    def pending_count(self) -> int:
        """Requests in flight."""
        return len(self._pending)

    def calls_in_flight(self) -> int:
        """Function calls (CALL requests) in flight."""
        with self._lock:
            return sum(1 for pending in self._pending.values() if pending.kind == Kind.CALL)

    # --- starting and re-attaching --------------------------------------------------

    def start(
        self,
        stream: ByteStream,
        stage_two: bytes,
        timeout: float,
        sources: Callable[[], bytes] | None = None,
    ) -> dict[str, Any]:
        """Send the second stage on a new agent's stream, wait for the ready marker and
        HELLO; start reading. A second stage on another Python version than ours asks
        for the modules' sources: ``sources()`` is sent then.

        Raises:
            AgentStartError: the marker or HELLO did not come in time, or the stream
                ended first; the error carries what the host printed.
        """
        deadline = Deadline(timeout)
        try:
            try:
                stream.sendall(stage_two, timeout)
            except BrokenPipeError:
                # The host closed the stream at once (a ForceCommand that refuses a
                # shell, say): what it printed says why, so read it before failing.
                await_marker(stream, deadline, self.host)
                raise
            rest = await_marker(stream, deadline, self.host, sources)
            source = Prefilled(rest, stream)
            reader = FrameReader(source.recv)
            frame = read_first(reader, source, deadline)
            if frame is None or frame.kind != Kind.HELLO:
                raise FrameError(f"expected HELLO from the agent, got {frame!r}")
        except (OSError, TimeoutError, FrameError) as exc:
            # The agent may have died: let its last words arrive (bounded) for the error.
            stderr = stream.final_stderr(1.0)
            stream.abort()
            stream.release()
            raise AgentStartError(self.host, str(exc), stderr) from exc
        self.hello = frame.payload
        with self._send_lock:
            self._switch_to(stream)
        self._flush()  # what was queued while this thread held the lock
        self._read_on(stream, reader)
        return self.hello

    def reattach(self, stream: ByteStream, timeout: float) -> None:
        """Take the session up again on a new stream to the same agent (the attach
        stub's, see :func:`~actorcluster.remote.bootstrap.attach_command`): ATTACH,
        wait for ATTACHED, resend what the agent missed, start reading.

        Raises:
            AgentStartError: the agent did not take it (gone, or not answering in time).
        """
        deadline = Deadline(timeout)
        hello = {"secret": self.address.get("secret", ""), "received": self._ledger.received}
        try:
            stream.sendall(_encode(Kind.ATTACH, 0, hello), timeout)
            source = Prefilled(b"", stream)
            reader = FrameReader(source.recv)
            frame = read_first(reader, source, deadline)
        except (OSError, TimeoutError, FrameError) as exc:
            stderr = stream.final_stderr(1.0)
            raise AgentStartError(self.host, f"re-attach failed: {exc}", stderr) from exc
        received = frame.payload.get("received") if frame is not None else None
        if frame is None or frame.kind != Kind.ATTACHED or not isinstance(received, int):
            detail = f"re-attach failed: expected ATTACHED, got {frame!r}"
            raise AgentStartError(self.host, detail, stream.final_stderr(1.0))
        with self._send_lock:  # no other write between the resending and the switch
            with self._lock:
                self._forget_acknowledged(received)
                kept = self._ledger.unacknowledged()
                resent = self._ledger.sent
            try:
                for data in kept:
                    stream.sendall(data, self._heartbeat_timeout)
            except (OSError, TimeoutError) as exc:
                raise AgentStartError(self.host, f"re-attach failed: {exc}") from exc
            self._switch_to(stream, resent)
        self._flush()
        self._read_on(stream, reader)
        log.debug("agent.reattached", host=self.host, resent=len(kept))

    def _switch_to(self, stream: ByteStream, resent: int | None = None) -> None:
        """Make ``stream`` the session's (with the send lock held). ``resent``: the
        last frame a re-attach resent; those kept after it were sent while it resent
        (senders do not wait for the send lock) and go out next, in order."""
        with self._lock:
            self._stream = stream
            self._detached = None
            self._outbox = [] if resent is None else self._ledger.after(resent)
            self._last_seen = time.monotonic()
            if self._give_up is not None:
                self._give_up.cancel()
                self._give_up = None
            self._room.notify_all()

    def _read_on(self, stream: ByteStream, reader: FrameReader) -> None:
        self._reader_job = THREADS.start(
            self._read_loop, stream, reader, name=f"actorcluster-agent-reader-{self.host}"
        )
        self._schedule_heartbeat()

    # --- requests -------------------------------------------------------------------

    def submit(
        self,
        kind: Kind,
        payload: dict[str, Any],
        on_frame: Callable[[Frame], None] | None = None,
    ) -> Pending:
        """Send a request; return it at once (while detached it is sent on re-attach).

        Raises:
            AgentLostError: the session is over, or sending failed.
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

        An upload chunk (PUT_CHUNK) waits while too much is unacknowledged; it fails if
        the stream is lost meanwhile (uploads do not survive reconnects).

        Raises:
            AgentLostError: the session is over, the stream was lost while an upload
                chunk waited, or the stream took nothing for the heartbeat timeout.
        """
        data = _encode(kind, request_id, payload)
        if kind == Kind.PUT_CHUNK:
            self._wait_for_room()
        with self._lock:
            if self._lost_error is not None:
                raise self._lost_error
            self._ledger.keep(data)
            if self._detached is None:
                self._outbox.append(data)
        self._flush()

    def _flush(self) -> None:
        """Write the outbox, unless another thread is writing: that one writes what was
        queued meanwhile too (in one write when small), before it lets go of the lock;
        whoever queued after it looked takes the lock once it is free."""
        while self._outbox and self._send_lock.acquire(blocking=False):
            try:
                while True:
                    with self._lock:
                        frames, self._outbox = self._outbox, []
                        stream = self._stream if self._detached is None else None
                    if not frames or stream is None:
                        break  # frames of a lost stream are kept: resent on re-attach
                    for data in _batches(frames):
                        self._write(stream, data)
            finally:
                self._send_lock.release()

    def _flush_elsewhere(self) -> None:
        """After the reader or the timer thread held the send lock: frames queued
        meanwhile are written on a worker (neither thread may block on a write)."""
        if self._outbox:
            THREADS.start(self._flush, name="actorcluster-agent-flush")

    def _wait_for_room(self) -> None:
        deadline = Deadline(self._heartbeat_timeout)
        with self._room:
            while self._ledger.full or self._detached is not None:
                if self._lost_error is not None:
                    raise self._lost_error
                if self._detached is not None:
                    why = f"an upload cannot wait out a reconnect ({self._detached.args[1]})"
                    raise AgentLostError(self.host, why, self._detached.kind)
                if deadline.expired():
                    break
                self._room.wait(deadline.remaining())
            else:
                return
        self._lose_stream(f"the agent took no data for {self._heartbeat_timeout:g} s", _SILENT)
        raise self._lost_error or self._detached or AgentLostError(self.host, "lost", _SILENT)

    def _write(self, stream: ByteStream, data: bytes) -> None:
        """Write on the current stream (with the send lock held); a failure loses it."""
        try:
            stream.sendall(data, self._heartbeat_timeout)
            if self._ack_wanted:
                self._send_control_locked(stream, Kind.ACK, {"received": self._ledger.received})
            if self._ping_wanted:
                self._send_ping_locked(stream)
        except TimeoutError:
            reason = f"the agent took no data for {self._heartbeat_timeout:g} s"
            self._lose_stream(reason, _SILENT)
        except OSError as exc:
            self._lose_stream(f"sending to the agent failed: {exc}", _BROKEN)

    def cancel(self, request_id: int) -> None:
        """Ask the agent to stop a request; it then answers ERROR cancelled."""
        if not self.lost:
            with contextlib.suppress(AgentLostError):
                self.send(Kind.CANCEL, 0, {"target": request_id})

    # --- reading --------------------------------------------------------------------

    def _read_loop(self, stream: ByteStream, reader: FrameReader) -> None:
        try:
            self._read_frames(stream, reader)
        finally:
            if self._stream is not stream or not self.alive:
                stream.release()  # this stream is over: free its pipes, reap its process

    def _read_frames(self, stream: ByteStream, reader: FrameReader) -> None:
        while True:
            try:
                frame = reader.read_frame()
            except TimeoutError:
                continue  # a quiet stream is the heartbeat's to judge
            except FrameError as exc:
                self._lose_stream(f"protocol error: {exc}", _BROKEN, stream)
                return
            except OSError as exc:
                self._lose_stream(f"the stream broke: {exc}", _BROKEN, stream)
                return
            if self._stream is not stream:
                return  # replaced: what still arrives here was resent on the new one
            if frame is None:
                self._lose_stream("the agent's stream ended", _ENDED, stream)
                return
            self._last_seen = time.monotonic()
            self._take(stream, frame)

    def _take(self, stream: ByteStream, frame: Frame) -> None:
        kind = frame.kind
        if kind in CONTROL_KINDS:
            received = frame.payload.get("received")
            if isinstance(received, int):
                with self._lock:
                    self._forget_acknowledged(received)
            if kind == Kind.PONG:
                self._dispatch(frame)
            return
        data = frame.payload.get("data")
        if self._ledger.count_received(len(data) if isinstance(data, bytes) else 0):
            self._ack_soon(stream)
        self._dispatch(frame)

    def _ack_soon(self, stream: ByteStream) -> None:
        """Acknowledge what arrived (now, unless a send is under way: then after it)."""
        if self._send_lock.acquire(blocking=False):
            try:
                self._send_control_locked(stream, Kind.ACK, {"received": self._ledger.received})
            except (OSError, TimeoutError):
                pass  # the stream's loss is the reader's or the heartbeat's to see
            finally:
                self._send_lock.release()
            self._flush_elsewhere()
        else:
            self._ack_wanted = True

    def _forget_acknowledged(self, received: int) -> None:
        """The agent has the first ``received`` data frames (with the lock held)."""
        self._ledger.forget_acknowledged(received)
        self._room.notify_all()

    def _dispatch(self, frame: Frame) -> None:
        if frame.kind in AGENT_REQUEST_KINDS:
            serve = self.on_request
            try:
                if serve is not None:
                    serve(frame)
            except Exception as exc:  # a failed hand-over must not kill the reader
                log.error("agent.request_handler_failed", host=self.host, error=repr(exc))
            return
        if frame.kind in FINAL_KINDS:
            with self._lock:
                pending = self._pending.pop(frame.request_id, None)
            if pending is not None:
                pending.finish(frame, None)
            return
        pending = self._pending.get(frame.request_id)
        if pending is not None and pending.on_frame is not None:
            try:
                pending.on_frame(frame)
            except Exception as exc:  # a consumer's bug must not kill the reader
                log.error("agent.frame_callback_failed", host=self.host, error=repr(exc))

    # --- heartbeats -----------------------------------------------------------------

    def _schedule_heartbeat(self) -> None:
        if self.alive:
            self._heartbeat = TIMERS.call_later(self._heartbeat_interval, self._beat)

    def _beat(self) -> None:
        """On the timer thread: judge silence, then ping (never blocking this thread)."""
        stream = self._stream
        if not self.alive or stream is None:
            return
        silent = time.monotonic() - self._last_seen
        if silent > self._heartbeat_timeout:
            reason = f"no answer to heartbeats for {silent:.1f} s"
            lose = self._lose_stream
            THREADS.start(lose, reason, _SILENT, stream, name="actorcluster-agent-lost")
            return
        if self._send_lock.acquire(blocking=False):
            try:
                self._send_ping_locked(stream)
            except (OSError, TimeoutError):
                pass  # the sender's failure is the sender's to report; silence decides
            finally:
                self._send_lock.release()
            self._flush_elsewhere()
        else:
            self._ping_wanted = True  # a frame is being sent: ping right after it
        self._schedule_heartbeat()

    def _send_ping_locked(self, stream: ByteStream) -> None:
        self._ping_wanted = False
        pending = Pending(next(self._ids), Kind.PING, None)
        with self._lock:
            if not self.alive:
                return
            self._pending[pending.request_id] = pending
        payload = {"received": self._ledger.received}
        self._send_control_locked(stream, Kind.PING, payload, pending.request_id)

    def _send_control_locked(
        self, stream: ByteStream, kind: Kind, payload: dict[str, Any], request_id: int = 0
    ) -> None:
        if kind == Kind.ACK:
            self._ack_wanted = False
        stream.sendall(_encode(kind, request_id, payload), 1.0)

    # --- losing the stream, giving up -----------------------------------------------

    def drop_stream(self, reason: str) -> None:
        """Let the current stream go (a reconnect replaces it), without the lost
        callback; no-op without one."""
        self._lose_stream(reason, _ENDED, notify=False)

    def _lose_stream(
        self, reason: str, kind: str, stream: ByteStream | None = None, *, notify: bool = True
    ) -> None:
        """The stream is gone: detach (the session waits for a re-attach), or, if it
        cannot be resumed, fail everything."""
        current = self._stream
        if current is None or (stream is not None and stream is not current):
            return
        stderr = current.stderr_text().strip()
        if stderr:
            reason = f"{reason}; agent stderr: {stderr[-500:]}"
        error = AgentLostError(self.host, reason, kind)
        with self._lock:
            if self._lost_error is not None or self._detached is not None:
                return
            self._detached = error
            pings = [rid for rid, p in self._pending.items() if p.kind == Kind.PING]
            dropped = [self._pending.pop(rid) for rid in pings]
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self._room.notify_all()
            resumable = self.resumable
            if resumable:
                self._give_up = TIMERS.call_later(self.grace, lambda: self.give_up(error))
        for ping in dropped:
            ping.finish(None, error)
        current.abort()
        log.info("agent.lost", host=self.host, reason=reason, resumable=resumable)
        if not resumable:
            self.give_up(error)
        if notify and self._on_lost is not None:
            self._on_lost(error)

    def give_up(self, error: AgentLostError) -> None:
        """End the session: every pending request fails with ``error`` (typed, naming
        the host); the agent (if alive) ends it too, after its grace."""
        with self._lock:
            if self._lost_error is not None:
                return
            if error.kind != _CLOSED and self._detached is not None and self.grace > 0:
                reason = f"{error.args[1]}; no reconnect within {self.grace:g} s"
                error = AgentLostError(self.host, reason, error.kind)
            self._lost_error = error
            pending, self._pending = self._pending, {}
            if self._give_up is not None:
                self._give_up.cancel()
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self._ledger.clear()
            self._room.notify_all()
        for request in pending.values():
            request.finish(None, error)

    def close(self, reason: str = "closed by the client", wait: float = _CLOSE_WAIT) -> bool:
        """End the session now: the agent kills what it started, removes its temporary
        folders and exits; every pending request fails.

        Returns:
            Whether the agent's stream ended within ``wait`` seconds (False: the agent
            may be hung or stopped, and still there; the caller kills it by pid).
        """
        with self._lock:
            self._on_lost = None
            stream = self._stream if self._detached is None else None
        if stream is not None:
            with contextlib.suppress(OSError, TimeoutError), self._send_lock:
                with self._lock:
                    frames, self._outbox = self._outbox, []
                for data in _batches(frames):  # what was sent before the close goes first
                    stream.sendall(data, 1.0)
                stream.sendall(_encode(Kind.CLOSE, 0, {}), 1.0)
        self.give_up(AgentLostError(self.host, reason, _CLOSED))
        reader = self._reader_job
        joinable = reader is not None and not reader.is_current()
        if stream is not None and joinable:
            # The agent's stream ends when it exits, after it has killed what it started:
            # waiting for that means nothing of the session runs once close returns.
            assert reader is not None
            reader.join(timeout=wait)
        ended = stream is None or not (joinable and reader is not None and reader.is_alive())
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        if joinable:
            assert reader is not None
            reader.join(timeout=5)
        if stream is not None:
            stream.release()
        return ended
