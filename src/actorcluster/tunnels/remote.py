"""A listener on the host (``tcpip-forward``) whose connections are relayed to a port here.

The listener itself is :class:`~actorcluster.ssh.forwarding.RemoteListener`; this
module connects each of its connections to the service here and relays.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

from actorcluster._limits import TUNNEL_CONNECT_TIMEOUT as _CONNECT_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.ssh.forwarding import RemoteListener
from actorcluster.tunnels.relay import RelaySet, SocketEnd, spawn

if TYPE_CHECKING:
    from actorcluster.ssh import SshConnection
    from actorcluster.tunnels.relay import End

__all__ = ["RemoteForwarder"]

log = get_logger(__name__)


class RemoteForwarder:
    """Listens on ``address:port`` on the host; relays each connection to ``target`` here.

    Args:
        name: for thread names and logs.
        connection: the runtime's SSH connection.
        address: the address to listen on, on the host.
        port: the port to listen on, on the host.
        target: where each connection goes, here.
    """

    carrier = "paramiko"
    """What carries the tunnel."""

    def __init__(
        self,
        name: str,
        connection: SshConnection,
        address: str,
        port: int,
        target: tuple[str, int],
    ) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.target = target
        self._listener = RemoteListener(connection, address, port, self._on_connection)
        self._relays = RelaySet()
        self._closing = threading.Event()

    @property
    def relays(self) -> RelaySet:
        """Its live connections (their count, the bytes they carried)."""
        return self._relays

    def __repr__(self) -> str:
        return f"<RemoteForwarder {self._listener!r} relays={len(self._relays)}>"

    def open(self) -> None:
        """Ask the host to listen and forward.

        Raises:
            HostUnreachableError: the runtime's connection is closed.
            RemoteError: the host refused (the port is taken, or forwarding is off).
        """
        self._listener.open()

    def close(self) -> None:
        """Cancel the forward (the host stops listening) and close every connection now."""
        self._closing.set()
        self._listener.close()
        self._relays.close()

    def _on_connection(self, far: End) -> None:
        if self._closing.is_set():
            far.close()
            return
        try:
            spawn(self._serve, far)
        except RuntimeError as exc:  # no thread to be had: refuse this one connection
            log.warning("tunnel.connection.dropped", tunnel=self.name, error=str(exc))
            far.close()

    def _serve(self, far: End) -> None:
        try:
            sock = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT)
        except OSError as exc:  # the service here is down: only this connection fails
            log.debug("tunnel.connection.refused", tunnel=self.name, error=str(exc))
            far.close()
            return
        sock.settimeout(None)
        self._relays.run(far, SocketEnd(sock))
