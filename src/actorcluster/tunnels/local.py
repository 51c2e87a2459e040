"""A listener here whose connections are relayed to an end opened per connection.

Used by ``expose_port_from_runtime`` (each connection gets a ``direct-tcpip`` channel
of the runtime's SSH connection) and by the local runtime's tunnels (each connection
gets a TCP connection to a port here).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster._workers import THREADS
from actorcluster.tunnels.relay import RelaySet, SocketEnd, spawn

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.tunnels.relay import End

__all__ = ["LocalForwarder", "bind_listener", "port_is_free"]

log = get_logger(__name__)

_BACKLOG = 512
_BUSY = (errno.EADDRINUSE, errno.EACCES)


def bind_listener(address: str, port: int) -> socket.socket:
    """A TCP socket listening on ``address:port`` (SO_REUSEADDR, as sshd binds).

    Raises:
        OSError: the port cannot be bound (``EADDRINUSE`` when it is taken).
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def port_is_free(address: str, port: int) -> bool:
    """Whether a listener could be bound to ``address:port`` here right now."""
    try:
        bind_listener(address, port).close()
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


class LocalForwarder:
    """Accepts on ``address:port`` here; relays each connection to ``connect()``'s end.

    Args:
        name: for thread names and logs.
        address: the address to listen on.
        port: the port to listen on.
        connect: opens the far end for one accepted connection; raising refuses that
            connection (it is closed; the listener stays).
        on_failed: called (from the accept thread) if the listener breaks by itself.
        carrier: what carries the connections, for logs (``"paramiko"``, ``"local"``).
    """

    def __init__(
        self,
        name: str,
        address: str,
        port: int,
        connect: Callable[[tuple[str, int]], End],
        on_failed: Callable[[str], None],
        *,
        carrier: str = "paramiko",
    ) -> None:
        self.name = name
        self.carrier = carrier
        self.address = address
        self.port = port
        self._connect = connect
        self._on_failed = on_failed
        self._relays = RelaySet()
        self._listener: socket.socket | None = None
        self._closing = threading.Event()
        self._pending: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def relays(self) -> RelaySet:
        """Its live connections (their count, the bytes they carried)."""
        return self._relays

    def __repr__(self) -> str:
        state = "closed" if self._closing.is_set() else "open"
        return f"<LocalForwarder {self.address}:{self.port} {state} relays={len(self._relays)}>"

    def open(self) -> None:
        """Bind the listener and start accepting.

        Raises:
            OSError: the port cannot be bound.
        """
        listener = self._listener = bind_listener(self.address, self.port)
        THREADS.start(self._accept_loop, listener, name=f"{self.name}-accept")

    def close(self) -> None:
        """Stop listening and close every relayed connection now."""
        self._closing.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
        self._relays.close()
        with self._lock:
            pending, self._pending = list(self._pending), set()
        for sock in pending:
            SocketEnd(sock).close()

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._pending.discard(sock)
        SocketEnd(sock).close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                sock, peer = listener.accept()
            except OSError as exc:
                if not self._closing.is_set():
                    self._on_failed(f"the listener failed: {exc}")
                return
            with self._lock:
                self._pending.add(sock)
            try:
                spawn(self._serve, sock, peer)
            except RuntimeError as exc:  # no thread to be had: refuse this one connection
                log.warning("tunnel.connection.dropped", tunnel=self.name, error=str(exc))
                self._drop(sock)

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        client = SocketEnd(sock)
        try:
            far = self._connect(peer[:2])
        except Exception as exc:  # the service or the host refused: only this connection
            log.debug("tunnel.connection.refused", tunnel=self.name, error=str(exc))
            client.close()
            return
        finally:
            with self._lock:
                self._pending.discard(sock)
        if self._closing.is_set():
            far.close()
            client.close()
            return
        self._relays.run(client, far)
