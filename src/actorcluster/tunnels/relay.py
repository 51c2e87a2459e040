"""Relaying one connection's bytes between two ends, a thread per direction.

Each direction is a plain blocking loop (``recv`` up to :data:`CHUNK` bytes, then
``sendall``): no ``select``, so an SSH channel is read straight from its buffer
(``Channel.fileno`` would add a pipe and a wakeup per packet). When one direction
reads the end of its stream, the other end's writing side is shut (half-close, as
``ssh -L`` does); when both directions ended, or either failed, both ends are closed.
:meth:`Relay.close` closes both at once, waking the blocked threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Protocol

from actorcluster._workers import Workers

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CHUNK", "End", "Relay", "RelaySet", "SocketEnd", "spawn"]

CHUNK = 512 * 1024
"""Bytes asked for per read: large, so a fast stream costs few Python-level loops."""
_SOCKET_BUFFER = 4 * 2**20
_IDLE_SECONDS = 30.0


_workers = Workers("actorcluster-relay", linger=_IDLE_SECONDS, listed=False)
"""Relay threads: reused for the next connection's directions; idle ones end."""


def spawn(target: Callable[..., object], *args: object) -> None:
    """Run ``target(*args)`` on a thread of its own, without waiting for it to start.

    Threads are reused (a :class:`~actorcluster._workers.Workers` pool), and
    ``threading.Thread.start`` is avoided: it waits until the new thread runs, which
    under load can cost a GIL switch interval (5 ms) per connection. The threads never
    delay interpreter exit. ``target`` must handle its own errors.
    """
    _workers.submit(target, *args)


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
