"""Relaying one connection's bytes between two ends, a thread per direction.

Each direction is a plain blocking loop (``recv`` up to :data:`CHUNK` bytes, then
``sendall``): no ``select``, so an SSH channel is read straight from its buffer
(``Channel.fileno`` would add a pipe and a wakeup per packet). When one direction
reads the end of its stream, the other end's writing side is shut (half-close, as
``ssh -L`` does); when both directions ended, or either failed, both ends are closed.
:meth:`Relay.close` closes both at once, waking the blocked threads.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import queue
import socket
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CHUNK", "End", "Relay", "RelaySet", "SocketEnd", "spawn"]

CHUNK = 512 * 1024
"""Bytes asked for per read: large, so a fast stream costs few Python-level loops."""
_SOCKET_BUFFER = 4 * 2**20
_IDLE_SECONDS = 30.0
_Job = tuple["Callable[..., object]", tuple[object, ...]]


class _Workers:
    """Threads that run one blocking job each, then wait a while for the next.

    A relay needs a thread per direction for as long as its connection lasts; a
    tunnel serving many short connections would otherwise create (and tear down) two
    threads per connection. Idle threads end after :data:`_IDLE_SECONDS`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = 0

    def submit(self, target: Callable[..., object], args: tuple[object, ...]) -> None:
        """Run ``target(*args)`` on an idle thread, or on a new one."""
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._jobs.put((target, args))
                return
        _thread.start_new_thread(self._work, ((target, args),))

    def _work(self, job: _Job | None) -> None:
        while job is not None:
            target, args = job
            job = None  # hold nothing of a finished job while idle
            target(*args)
            del target, args
            job = self._next()

    def _next(self) -> _Job | None:
        with self._lock:
            self._idle += 1
        try:
            return self._jobs.get(timeout=_IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                try:  # a job handed to this thread just as it timed out
                    return self._jobs.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return None


_workers = _Workers()


def _forget_workers() -> None:
    global _workers  # noqa: PLW0603 - a forked child inherits no idle threads
    _workers = _Workers()


os.register_at_fork(after_in_child=_forget_workers)


def spawn(target: Callable[..., object], *args: object) -> None:
    """Run ``target(*args)`` on a thread of its own, without waiting for it to start.

    Threads are reused (see :class:`_Workers`), and ``threading.Thread.start`` is
    avoided: it waits until the new thread runs, which under load can cost a GIL
    switch interval (5 ms) per connection. The threads never delay interpreter exit.
    ``target`` must handle its own errors.
    """
    _workers.submit(target, args)


class End(Protocol):
    """One side of a relayed connection: a TCP socket, or an SSH channel
    (:class:`actorcluster.ssh.forwarding.ChannelEnd`). Failures raise ``OSError``."""

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the stream."""

    def sendall(self, data: bytes) -> None:
        """Send all of ``data`` or raise."""

    def shutdown_write(self) -> None:
        """Tell the peer no more data will come."""

    def close(self) -> None:
        """Close at once, waking any thread blocked in ``recv`` or ``sendall``."""


class SocketEnd:
    """A connected TCP socket as an :class:`End` (TCP_NODELAY, large buffers)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        self.recv = sock.recv
        self.sendall = sock.sendall

    def __repr__(self) -> str:
        return f"<SocketEnd fd={self.sock.fileno()}>"

    def shutdown_write(self) -> None:
        """Send FIN."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Shut both ways (wakes a blocked recv), then close."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class Relay:
    """Copies bytes both ways between ``left`` and ``right`` until both streams end.

    Args:
        left: the end that was accepted (the tunnel's client side).
        right: the end opened towards the service.
        on_end: called once, from a relay thread, when the relay is over.
    """

    def __init__(self, left: End, right: End, on_end: Callable[[Relay], None]) -> None:
        self.left = left
        self.right = right
        self._on_end = on_end
        self._lock = threading.Lock()
        self._running = 2
        self._closed = False
        self.carried = [0, 0]
        """Bytes copied left to right, and right to left (each written by its thread)."""

    def __repr__(self) -> str:
        return f"<Relay {self.left!r} <-> {self.right!r} running={self._running}>"

    def run(self) -> None:
        """Relay right to left on a new thread and left to right on this one."""
        spawn(self._pump, self.right, self.left, 1)
        self._pump(self.left, self.right, 0)

    def close(self) -> None:
        """Close both ends now; both threads end promptly."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.left.close()
        self.right.close()

    def _pump(self, source: End, sink: End, way: int) -> None:
        recv, send, carried = source.recv, sink.sendall, self.carried
        try:
            while data := recv(CHUNK):
                send(data)
                carried[way] += len(data)
        except Exception:  # a reset, a closed channel, a lost transport: end both ways
            self.close()
        else:
            sink.shutdown_write()
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.close()
            self._on_end(self)


class RelaySet:
    """The live relays of one forwarder, so they can all be closed at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._relays: set[Relay] = set()
        self._closed = False
        self._carried_before = 0

    def __len__(self) -> int:
        return len(self._relays)

    def bytes_carried(self) -> int:
        """Bytes copied, both ways, by every relay so far (ended ones too)."""
        with self._lock:
            return self._carried_before + sum(sum(relay.carried) for relay in self._relays)

    def run(self, left: End, right: End) -> None:
        """Relay between the two ends on this thread (and one more) until it is over."""
        relay = Relay(left, right, self._discard)
        with self._lock:
            closed = self._closed
            if not closed:
                self._relays.add(relay)
        if closed:
            relay.close()
            return
        relay.run()

    def close(self) -> None:
        """Close every relay and refuse new ones."""
        with self._lock:
            self._closed = True
            relays, self._relays = list(self._relays), set()
        for relay in relays:
            relay.close()

    def _discard(self, relay: Relay) -> None:
        with self._lock:
            if relay in self._relays:
                self._relays.discard(relay)
                self._carried_before += sum(relay.carried)
