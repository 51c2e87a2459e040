"""Choosing and opening the forwarder that carries one tunnel.

=====================  ======================================  ==========================
runtime / carrier      ``-L`` (expose_port_from_runtime)        ``-R`` (expose_port_to_runtime)
=====================  ======================================  ==========================
SSH, ``paramiko``      listener here, ``direct-tcpip`` channels  ``tcpip-forward`` on the host
SSH, ``openssh``       ``ssh -N -L``                            ``ssh -N -R``
``localhost``          listener here, TCP to 127.0.0.1:port     the same
=====================  ======================================  ==========================

Opening failures come out as :mod:`actorcluster.errors` types.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Protocol

from actorcluster.errors import HostUnreachableError, PortInUseError, RemoteError, UsageError
from actorcluster.tunnels.local import LocalForwarder
from actorcluster.tunnels.openssh import OpenSshForwarder
from actorcluster.tunnels.relay import ChannelEnd, SocketEnd
from actorcluster.tunnels.remote import (
    FORWARD_MAX_PACKET_SIZE,
    ForwardRefusedError,
    RemoteForwarder,
)
from actorcluster.tunnels.spec import FROM_RUNTIME, LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.actors.context import RuntimeContext
    from actorcluster.tunnels.relay import End
    from actorcluster.tunnels.spec import TunnelSpec

__all__ = ["Forwarder", "open_forwarder"]

_CONNECT_TIMEOUT = 10.0


class Forwarder(Protocol):
    """What carries one tunnel: opened once, closed once."""

    def open(self) -> None:
        """Start listening (and forwarding)."""

    def close(self) -> None:
        """Stop listening and close every connection now."""


def open_forwarder(
    context: RuntimeContext, spec: TunnelSpec, on_failed: Callable[[str], None]
) -> Forwarder:
    """Make and open the forwarder for ``spec`` on ``context``'s runtime.

    Args:
        context: the runtime's shared state (its current connection).
        spec: the tunnel.
        on_failed: called if the forwarder breaks by itself later.

    Raises:
        PortInUseError: the listening port is taken.
        HostUnreachableError: the runtime has no connection now.
        RemoteError: the host refused to forward (or ssh failed), with its reason.
    """
    forwarder = _make(context, spec, on_failed)
    try:
        forwarder.open()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(spec.listen_port, spec.listen_side) from exc
        raise UsageError(f"cannot listen on {spec.bind_address}:{spec.listen_port}: {exc}") from exc
    except ForwardRefusedError as exc:
        what = f"forwarding {spec.bind_address}:{spec.listen_port} ({spec.direction})"
        raise RemoteError(f"{spec.host} refused {what}: {exc}") from exc
    return forwarder


def _make(context: RuntimeContext, spec: TunnelSpec, on_failed: Callable[[str], None]) -> Forwarder:
    name = f"tunnel-{spec.host}{spec.direction}{spec.listen_port}"
    target = context.options.target
    if target is None:
        connect = _tcp_connector(spec.target_port)
        return LocalForwarder(name, spec.bind_address, spec.listen_port, connect, on_failed)
    if spec.carrier == "openssh":
        return OpenSshForwarder(name, target, spec, on_failed, timeout=target.connect_timeout + 20)
    if spec.direction == FROM_RUNTIME:
        connect = _channel_connector(context, spec.target_port)
        return LocalForwarder(name, spec.bind_address, spec.listen_port, connect, on_failed)
    connection = context.connection
    if connection is None or not connection.is_active():
        raise HostUnreachableError(spec.host, "no SSH connection to forward over")
    target_address = (LOOPBACK, spec.target_port)
    return RemoteForwarder(
        name, connection.transport, spec.bind_address, spec.listen_port, target_address
    )


def _tcp_connector(port: int) -> Callable[[tuple[str, int]], End]:
    def connect(peer: tuple[str, int]) -> End:
        sock = socket.create_connection((LOOPBACK, port), timeout=_CONNECT_TIMEOUT)
        sock.settimeout(None)
        return SocketEnd(sock)

    return connect


def _channel_connector(context: RuntimeContext, port: int) -> Callable[[tuple[str, int]], End]:
    def connect(peer: tuple[str, int]) -> End:
        connection = context.connection
        if connection is None:
            raise HostUnreachableError(context.host, "no SSH connection (reconnecting)")
        channel = connection.open_direct_tcpip(
            (LOOPBACK, port), src=peer, max_packet_size=FORWARD_MAX_PACKET_SIZE
        )
        return ChannelEnd(channel)

    return connect
