"""Choosing and opening the forwarder that carries one tunnel.

==================  ========================================  ==============================
runtime / carrier   ``-L`` (expose_port_from_runtime)         ``-R`` (expose_port_to_runtime)
==================  ========================================  ==============================
SSH, ``openssh``    ``ssh -N -L``                             ``ssh -N -R``
SSH, ``paramiko``   listener here, ``direct-tcpip`` channels  ``tcpip-forward`` on the host
``localhost``       listener here, TCP to 127.0.0.1:port      the same
==================  ========================================  ==============================

A tunnel whose user named no carrier gets :func:`~actorcluster.tunnels.default_carrier`'s
choice, made again at each open. If that is ``openssh`` and ``ssh`` cannot log in
where the runtime's own connection did (its options, the host key or the credentials
refused; not a host out of reach), the tunnel is carried by the paramiko relay instead,
and that is logged once per host. Opening failures come out as
:mod:`actorcluster.errors` types.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Protocol

from actorcluster._limits import TUNNEL_CONNECT_TIMEOUT as _CONNECT_TIMEOUT
from actorcluster.errors import HostUnreachableError, PortInUseError, RemoteError, UsageError
from actorcluster.ssh.forwarding import open_channel_end
from actorcluster.tunnels.carrier import (
    OPENSSH,
    PARAMIKO,
    default_carrier,
    openssh_client,
    openssh_obstacle,
    say_once,
)
from actorcluster.tunnels.local import LocalForwarder, port_is_free
from actorcluster.tunnels.openssh import OpenSshForwarder
from actorcluster.tunnels.relay import SocketEnd
from actorcluster.tunnels.remote import RemoteForwarder
from actorcluster.tunnels.spec import FROM_RUNTIME, LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.ssh import SshConnection, SshTarget
    from actorcluster.tunnels.relay import End
    from actorcluster.tunnels.spec import TunnelSpec

__all__ = ["Forwarder", "TunnelHost", "TunnelHostOptions", "open_forwarder"]

_OPENSSH_SETUP_SECONDS = 20.0  # beyond connect_timeout: login, then the forward


class TunnelHostOptions(Protocol):
    """What tunnels read of a runtime's options."""

    @property
    def target(self) -> SshTarget | None:
        """Where and how the runtime connects; None for the local runtime."""

    @property
    def is_local(self) -> bool:
        """Whether the runtime is the local one (no SSH)."""


class TunnelHost(Protocol):
    """The runtime a tunnel belongs to, as tunnels see it."""

    @property
    def host(self) -> str:
        """The runtime's host name."""

    @property
    def options(self) -> TunnelHostOptions:
        """How the runtime reaches its host."""

    @property
    def connection(self) -> SshConnection | None:
        """The runtime's current SSH connection; None while it has none."""


class Forwarder(Protocol):
    """What carries one tunnel: opened once, closed once."""

    @property
    def carrier(self) -> str:
        """What carries it: ``"openssh"``, ``"paramiko"`` or ``"local"``."""

    def open(self) -> None:
        """Start listening (and forwarding)."""

    def close(self) -> None:
        """Stop listening and close every connection now."""


def open_forwarder(
    host: TunnelHost, spec: TunnelSpec, on_failed: Callable[[str], None]
) -> Forwarder:
    """Make and open the forwarder for ``spec`` on ``host``'s runtime.

    Args:
        host: the runtime (its options and current connection).
        spec: the tunnel.
        on_failed: called if the forwarder breaks by itself later.

    Raises:
        PortInUseError: the listening port is taken here.
        HostUnreachableError: the runtime has no connection now.
        RemoteError: the host refused to forward (or ssh failed), with its reason.
        UsageError: a bad bind address, or ``carrier="openssh"`` where ``ssh`` is
            missing or cannot log in as the runtime does.
    """
    name = f"tunnel-{spec.host}{spec.direction}{spec.listen_port}"
    target = host.options.target
    if host.options.is_local or target is None:
        connect = _tcp_connector(spec.target_port)
        local = LocalForwarder(
            name, spec.bind_address, spec.listen_port, connect, on_failed, carrier="local"
        )
        return _opened(local, spec)
    carrier = spec.carrier or default_carrier(target)
    if carrier == OPENSSH:
        forwarder = _open_openssh(name, host, target, spec, on_failed)
        if forwarder is not None:
            return forwarder
    return _opened(_paramiko_forwarder(name, host, spec, on_failed), spec)


def _open_openssh(
    name: str,
    host: TunnelHost,
    target: SshTarget,
    spec: TunnelSpec,
    on_failed: Callable[[str], None],
) -> Forwarder | None:
    """The open ``ssh -N`` forwarder, or None: the default carrier falls back."""
    chosen = spec.carrier == OPENSSH
    client = openssh_client()
    obstacle = "no OpenSSH client (ssh) on PATH" if client is None else openssh_obstacle(target)
    if obstacle is not None or client is None:
        if chosen:
            raise UsageError(f"carrier='openssh' cannot log in to {target.alias}: {obstacle}")
        return None
    if spec.direction == FROM_RUNTIME:
        _check_free_here(spec)  # before a login that would only fail on it
    timeout = target.connect_timeout + _OPENSSH_SETUP_SECONDS
    forwarder = OpenSshForwarder(name, client, target, spec, on_failed, timeout=timeout)
    try:
        forwarder.open()
    except RemoteError as exc:
        if chosen or not forwarder.login_refused or not _connected(host):
            raise
        say_once(("login-refused", target.alias), "warning", host=target.alias, reason=str(exc))
        return None
    return forwarder


def _paramiko_forwarder(
    name: str, host: TunnelHost, spec: TunnelSpec, on_failed: Callable[[str], None]
) -> Forwarder:
    if spec.direction == FROM_RUNTIME:
        connect = _channel_connector(host, spec.target_port)
        return LocalForwarder(
            name, spec.bind_address, spec.listen_port, connect, on_failed, carrier=PARAMIKO
        )
    connection = host.connection
    if connection is None or not connection.is_active():
        raise HostUnreachableError(spec.host, "no SSH connection to forward over")
    target_address = (LOOPBACK, spec.target_port)
    return RemoteForwarder(name, connection, spec.bind_address, spec.listen_port, target_address)


def _opened(forwarder: Forwarder, spec: TunnelSpec) -> Forwarder:
    """``forwarder``, opened; a listener that cannot bind here raises our errors."""
    try:
        forwarder.open()
    except OSError as exc:
        raise _bind_error(exc, spec) from exc
    return forwarder


def _check_free_here(spec: TunnelSpec) -> None:
    try:
        free = port_is_free(spec.bind_address, spec.listen_port)
    except OSError as exc:
        raise _bind_error(exc, spec) from exc
    if not free:
        raise PortInUseError(spec.listen_port, spec.listen_side)


def _bind_error(exc: OSError, spec: TunnelSpec) -> Exception:
    if exc.errno in (errno.EADDRINUSE, errno.EACCES):
        return PortInUseError(spec.listen_port, spec.listen_side)
    return UsageError(f"cannot listen on {spec.bind_address}:{spec.listen_port}: {exc}")


def _connected(host: TunnelHost) -> bool:
    connection = host.connection
    return connection is not None and connection.is_active()


def _tcp_connector(port: int) -> Callable[[tuple[str, int]], End]:
    def connect(peer: tuple[str, int]) -> End:
        sock = socket.create_connection((LOOPBACK, port), timeout=_CONNECT_TIMEOUT)
        sock.settimeout(None)
        return SocketEnd(sock)

    return connect


def _channel_connector(host: TunnelHost, port: int) -> Callable[[tuple[str, int]], End]:
    def connect(peer: tuple[str, int]) -> End:
        connection = host.connection
        if connection is None:
            raise HostUnreachableError(host.host, "no SSH connection (reconnecting)")
        return open_channel_end(connection, (LOOPBACK, port), peer)

    return connect
