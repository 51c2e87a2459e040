"""The agent's link to its client, which a reconnect replaces without ending the session.

Stdlib only (see the package docstring). The first link is the agent's own stdin and
stdout (the SSH channel that started it). When that stream ends, or the client stays
silent past its timeout (a partition: nothing arrives, not even an end), the agent
*detaches*: its processes go on and what it has to say waits in its
:class:`~.outbox.Outbox`. A reconnecting client runs a small stub on the host that
connects to the session's Unix socket (in a private folder) and hands over the new
channel's stdin and stdout (``SCM_RIGHTS``); its first frame is ATTACH with the
session's secret and how many data frames it received, the agent answers ATTACHED with
its own count, and both ends resend what the other missed: every frame is handled once.
Only when nobody re-attaches within the grace period does the session end (the agent
kills what it started and removes its temporary folders). A link that was replaced is
stale: its reader drops whatever still arrives on it.
"""

from __future__ import annotations

import array
import contextlib
import functools
import hmac
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from . import frames, sessions
from .hub import diag

if TYPE_CHECKING:
    from collections.abc import Callable

    from .outbox import Outbox

__all__ = ["ACK_EVERY", "Link", "Links"]

Kind = frames.Kind

ACK_EVERY = 1024 * 1024
"""Bytes of data frames received between two ACKs to the client."""
_POLL = 0.5


class Link:
    """One stream to the client.

    Args:
        recv: reads up to ``n`` bytes of the stream (``b""`` at its end).
        out_fd: where frames are written (made non-blocking).
        holds: what to close with the link (the attach stub's socket, its fds).
    """

    def __init__(self, recv: Callable[[int], bytes], out_fd: int, holds: list[Any]) -> None:
        self.recv = recv
        self.out_fd = out_fd
        self._holds = holds
        os.set_blocking(out_fd, False)

    def write(self, data: bytes, current: Callable[[], bool]) -> bool:
        """Write all of ``data`` while this link is current; False if it broke or was
        replaced (the rest is resent on the next link)."""
        view = memoryview(data)
        while view:
            if not current():
                return False
            try:
                _, writable, _ = select.select([], [self.out_fd], [], _POLL)
                if writable:
                    view = view[os.write(self.out_fd, view) :]
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return False
        return True

    def close(self) -> None:
        """Close what the link holds (not the agent's own stdin/stdout: they stay)."""
        for held in self._holds:
            with contextlib.suppress(OSError):
                if isinstance(held, int):
                    os.close(held)
                else:
                    held.close()


class Links:
    """The current link, its reader and writer threads, re-attaching and the grace.

    Args:
        outbox: what the agent has to say.
        dispatch: handles one data frame (on the current link's reader thread).
        end: called once, when the session ends (nobody came back in time, or CLOSE).
    """

    def __init__(
        self, outbox: Outbox, dispatch: Callable[[frames.Frame], None], end: Callable[[], None]
    ) -> None:
        self._outbox = outbox
        self._dispatch = dispatch
        self._end = end
        self._condition = threading.Condition()
        self._link: Link | None = None
        self._received = 0
        self._unacked_bytes = 0
        self._last_heard = time.monotonic()
        self._detached_at: float | None = None
        self.grace = 0.0
        """Seconds the session waits for a client to re-attach (0: it ends at once)."""
        self.client_timeout: float | None = None
        """Seconds of client silence after which the link counts as gone."""
        self._secret = ""
        self._listener: socket.socket | None = None
        self._ended = False
        self._write_lock = threading.Lock()
        self._switching = False

    # --- the first link and the session's address -----------------------------------

    def start(self, recv: Callable[[int], bytes], out_fd: int) -> None:
        """Serve the agent's own stdin/stdout; start the writer and the watch."""
        self._link = Link(recv, out_fd, [])
        for target, name in ((self._write_loop, "agent-writer"), (self._watch, "agent-watch")):
            _thread(target, name)

    def serve_first(self) -> None:
        """Read the first link (on the calling thread) until it ends or is replaced."""
        link = self._link
        assert link is not None
        self._read(link)

    def listen(self, folder: str) -> dict[str, Any]:
        """Accept re-attaches on a Unix socket in ``folder`` (private); the session's
        address for the client: socket path, secret, pid."""
        path = os.path.join(folder, sessions.SOCKET_NAME)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        self._listener = listener
        self._secret = os.urandom(32).hex()
        _thread(self._accept_loop, "agent-attach")
        return {"socket": path, "secret": self._secret, "pid": os.getpid()}

    # --- reading ----------------------------------------------------------------------

    def _current(self, link: Link) -> bool:
        return self._link is link

    def _read(self, link: Link, reader: frames.FrameReader | None = None) -> None:
        reader = reader or frames.FrameReader(link.recv)
        while True:
            try:
                frame = reader.read_frame()
            except (frames.FrameError, OSError) as exc:
                if self._current(link):
                    diag(f"input stream broken: {exc}")
                frame = None
            if frame is None or not self._current(link):
                self.detach(link, "the client's stream ended")
                return
            self._last_heard = time.monotonic()
            self._take(frame)

    def _take(self, frame: frames.Frame) -> None:
        kind, request_id, payload = frame
        if kind in frames.CONTROL_KINDS:
            received = payload.get("received")
            if isinstance(received, int):
                self._outbox.acknowledge(received)
            if kind == Kind.PING:
                self._outbox.put_control(
                    frames.encode_frame(Kind.PONG, request_id, {"received": self._received})
                )
            elif kind == Kind.CLOSE:
                self._finish()
            return
        self._received += 1
        self._unacked_bytes += len(payload.get("data", b"")) + 64
        if self._unacked_bytes >= ACK_EVERY:
            self._unacked_bytes = 0
            self._outbox.put_control(frames.encode_frame(Kind.ACK, 0, {"received": self._received}))
        self._dispatch(frame)

    # --- writing ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while (link := self._wait_for_link()) is not None:
            with self._write_lock:  # a re-attach switches links between two writes
                if self._link is not link or self._switching:
                    continue
                data = self._outbox.take(_POLL)
                if data is None or link.write(data, lambda: self._writable(link)):
                    continue
            if not self._switching:  # a switch makes a write give up: not a failure
                self.detach(link, "writing to the client failed")

    def _writable(self, link: Link) -> bool:
        return self._link is link and not self._switching

    def _wait_for_link(self) -> Link | None:
        """The current link, once there is one; None once the session ended."""
        with self._condition:
            while True:
                if self._ended:
                    return None
                link = self._link
                if link is not None:
                    return link
                self._condition.wait(_POLL)

    # --- detaching, re-attaching, the grace --------------------------------------------

    def detach(self, link: Link, reason: str) -> None:
        """``link`` is gone: wait for a re-attach (or end at once without a grace)."""
        with self._condition:
            if self._link is not link:
                return  # replaced already
            self._link = None
            self._detached_at = time.monotonic()
        link.close()
        diag(f"detached: {reason}; waiting {self.grace:g} s for the client")
        if self.grace <= 0:
            self._finish()

    def _watch(self) -> None:
        """Every moment: a silent client counts as gone; a grace that ran out ends it."""
        while not self._ended:
            time.sleep(_POLL)
            link, timeout = self._link, self.client_timeout
            if link is not None and timeout and time.monotonic() - self._last_heard > timeout:
                self.detach(link, f"no frame from the client for {timeout:g} s")
            detached = self._detached_at
            if (
                self._link is None
                and detached is not None
                and time.monotonic() - detached >= self.grace
            ):
                self._finish()

    def _finish(self) -> None:
        with self._condition:
            if self._ended:
                return
            self._ended = True
            self._condition.notify_all()
        self._outbox.close()
        self._end()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._ended:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            _thread(functools.partial(self._attach, conn), "agent-reattach")

    def _attach(self, conn: socket.socket) -> None:
        """A stub hands over a new channel's stdin and stdout; check ATTACH, switch."""
        try:
            fds = _recv_fds(conn, 2)
        except OSError:
            conn.close()
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        in_fd, out_fd = fds
        link = Link(lambda size: os.read(in_fd, size), out_fd, [in_fd, out_fd, conn])
        reader = frames.FrameReader(link.recv)
        try:
            frame = reader.read_frame()
        except (frames.FrameError, OSError):
            frame = None
        received = _attach_count(frame, self._secret)
        if received is None:
            diag("refused a re-attach: no valid ATTACH")
            link.close()
            return
        self._switching = True  # a write under way on the old link gives up
        try:
            with self._write_lock, self._condition:
                if self._ended:
                    link.close()
                    return
                old, self._link = self._link, link
                self._detached_at = None
                self._last_heard = time.monotonic()
                self._outbox.rewind(received)  # after the last write on the old link
                self._outbox.put_control(
                    frames.encode_frame(Kind.ATTACHED, 0, {"received": self._received})
                )
                self._condition.notify_all()
        finally:
            self._switching = False
        if old is not None:
            old.close()
        diag("re-attached")
        self._read(link, reader)


def _attach_count(frame: frames.Frame | None, secret: str) -> int | None:
    """The client's count of data frames received, if ``frame`` is a valid ATTACH.

    ``hmac`` is imported with the module, not here: while a function's import waits for
    the client's answer (over the very session this attach restores), the agent's
    importer holds Python's import lock, and an import here would wait for it forever.
    """
    if frame is None or frame.kind != Kind.ATTACH:
        return None
    given, received = frame.payload.get("secret"), frame.payload.get("received")
    if not isinstance(given, str) or not hmac.compare_digest(given, secret):
        return None
    return received if isinstance(received, int) and received >= 0 else None


def _thread(target: Callable[[], None], name: str) -> None:
    """Run ``target`` on a daemon thread; a failure is reported, never silent."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # a dying link thread must say why
            diag(f"{name} failed: {exc!r}")
            raise

    threading.Thread(target=run, name=name, daemon=True).start()


def _recv_fds(conn: socket.socket, count: int) -> list[int]:
    """Up to ``count`` file descriptors passed on ``conn`` (``socket.recv_fds``, which
    Python 3.8 lacks)."""
    size = socket.CMSG_SPACE(count * array.array("i").itemsize)
    _, ancillary, _, _ = conn.recvmsg(16, size)
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            ints = array.array("i")
            ints.frombytes(data[: len(data) - len(data) % ints.itemsize])
            fds.extend(ints)
    return fds
