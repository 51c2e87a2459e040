"""A listener on the host (``tcpip-forward``) whose connections are relayed to a port here.

paramiko keeps one handler for every forwarded connection of a transport, and its
``cancel_port_forward`` removes that handler for all of them. So each transport gets
one :class:`_Dispatcher` that routes incoming channels by the port they arrived on,
and a forward is cancelled with the bare ``cancel-tcpip-forward`` request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from typing import TYPE_CHECKING

import paramiko

from actorcluster._logging import get_logger
from actorcluster.tunnels.relay import ChannelEnd, RelaySet, SocketEnd, spawn

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FORWARD_MAX_PACKET_SIZE",
    "FORWARD_WINDOW_SIZE",
    "ForwardRefusedError",
    "RemoteForwarder",
]

log = get_logger(__name__)

FORWARD_WINDOW_SIZE = 16 * 2**20
"""Window of channels the host opens to us (forwarded connections)."""
FORWARD_MAX_PACKET_SIZE = 2**18
"""Largest packet the host may send us on them (OpenSSH's own packet limit)."""
_CONNECT_TIMEOUT = 10.0
_REQUEST_TIMEOUT = 10.0


class ForwardRefusedError(Exception):
    """The host refused (or did not answer) a ``tcpip-forward`` request."""


class _Dispatcher:
    """The one ``forwarded-tcpip`` handler of a transport: routes channels by port."""

    def __init__(self) -> None:
        self._routes: dict[int, Callable[[paramiko.Channel], None]] = {}
        self._lock = threading.Lock()

    def add(self, port: int, route: Callable[[paramiko.Channel], None]) -> None:
        with self._lock:
            self._routes[port] = route

    def remove(self, port: int) -> None:
        with self._lock:
            self._routes.pop(port, None)

    def __call__(
        self, channel: paramiko.Channel, origin: tuple[str, int], server: tuple[str, int]
    ) -> None:
        """Called on the transport's thread: hand the channel on, never block."""
        with self._lock:
            route = self._routes.get(server[1])
        if route is None:
            log.debug("tunnel.remote.unrouted", port=server[1])
            channel.close()
            return
        route(channel)


_dispatchers: weakref.WeakKeyDictionary[paramiko.Transport, _Dispatcher] = (
    weakref.WeakKeyDictionary()
)
_dispatchers_lock = threading.Lock()


def _dispatcher(transport: paramiko.Transport) -> _Dispatcher:
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(transport)
        if dispatcher is None:
            dispatcher = _dispatchers[transport] = _Dispatcher()
            # Windows of channels the host opens to us: paramiko's 2 MiB and 32 KiB
            # would throttle a forwarded stream.
            transport.default_window_size = FORWARD_WINDOW_SIZE
            transport.default_max_packet_size = FORWARD_MAX_PACKET_SIZE
        return dispatcher


class RemoteForwarder:
    """Listens on ``address:port`` on the host; relays each connection to ``target`` here.

    Args:
        name: for thread names and logs.
        transport: the runtime's SSH transport.
        address: the address to listen on, on the host.
        port: the port to listen on, on the host.
        target: where each connection goes, here.
    """

    def __init__(
        self,
        name: str,
        transport: paramiko.Transport,
        address: str,
        port: int,
        target: tuple[str, int],
    ) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.target = target
        self._transport = transport
        self._relays = RelaySet()
        self._closing = threading.Event()
        self._forwarding = False

    def __repr__(self) -> str:
        state = "forwarding" if self._forwarding else "closed"
        return f"<RemoteForwarder {self.address}:{self.port} {state} relays={len(self._relays)}>"

    def open(self) -> None:
        """Ask the host to listen and forward.

        Raises:
            ForwardRefusedError: the host refused (the port is taken, or forwarding is off).
        """
        dispatcher = _dispatcher(self._transport)
        dispatcher.add(self.port, self._on_channel)
        try:
            self._transport.request_port_forward(self.address, self.port, handler=dispatcher)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            dispatcher.remove(self.port)
            raise ForwardRefusedError(str(exc) or type(exc).__name__) from exc
        self._forwarding = True

    def close(self) -> None:
        """Cancel the forward (the host stops listening) and close every connection now."""
        self._closing.set()
        _dispatcher(self._transport).remove(self.port)
        if self._forwarding and self._transport.is_active():
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                self._transport.global_request(
                    "cancel-tcpip-forward", (self.address, self.port), wait=True
                )
        self._forwarding = False
        self._relays.close()

    def _on_channel(self, channel: paramiko.Channel) -> None:
        if self._closing.is_set():
            channel.close()
            return
        try:
            spawn(self._serve, channel)
        except RuntimeError as exc:  # no thread to be had: refuse this one connection
            log.warning("tunnel.connection.dropped", tunnel=self.name, error=str(exc))
            channel.close()

    def _serve(self, channel: paramiko.Channel) -> None:
        far = ChannelEnd(channel)
        try:
            sock = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT)
        except OSError as exc:  # the service here is down: only this connection fails
            log.debug("tunnel.connection.refused", tunnel=self.name, error=str(exc))
            far.close()
            return
        sock.settimeout(None)
        self._relays.run(far, SocketEnd(sock))
