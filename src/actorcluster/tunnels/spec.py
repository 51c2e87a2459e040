"""What one port exposure is: plain data, kept by the runtime while the tunnel is wanted."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CARRIERS",
    "DELIMITER",
    "FROM_RUNTIME",
    "LOOPBACK",
    "TO_RUNTIME",
    "TunnelSpec",
    "tunnel_key",
]

DELIMITER = "::"
"""Separates the parts of a process key (lazycluster's format)."""
FROM_RUNTIME = "-L"
"""Direction of ``expose_port_from_runtime``: a listener here, the service on the host."""
TO_RUNTIME = "-R"
"""Direction of ``expose_port_to_runtime``: a listener on the host, the service here."""
LOOPBACK = "127.0.0.1"
"""Where listeners bind by default, and where the service behind a tunnel is reached."""
CARRIERS = (None, "paramiko", "openssh")
"""What may carry a tunnel. ``None``: the default, chosen per runtime when the tunnel
opens (:func:`~actorcluster.tunnels.default_carrier`); ``"paramiko"``: relays over the
runtime's own connection; ``"openssh"``: an ``ssh -N`` process."""


def tunnel_key(host: str, direction: str, local_port: int, runtime_port: int) -> str:
    """The process key of a tunnel, in lazycluster's format.

    ``<host>::-L::<local port>::<runtime port>`` or ``<host>::-R::<runtime port>::<local port>``
    (the listening port first).
    """
    if direction == FROM_RUNTIME:
        ports = (str(local_port), str(runtime_port))
    else:
        ports = (str(runtime_port), str(local_port))
    return DELIMITER.join((host, direction, *ports))


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelSpec:
    """One wanted port exposure of a runtime."""

    host: str
    """The runtime's host name."""
    direction: str
    """:data:`FROM_RUNTIME` (``-L``) or :data:`TO_RUNTIME` (``-R``)."""
    local_port: int
    """The port here."""
    runtime_port: int
    """The port on the host."""
    bind_address: str = LOOPBACK
    """The address the listener binds to (here for ``-L``, on the host for ``-R``)."""
    carrier: str | None = None
    """What carries the traffic: one of :data:`CARRIERS` (None: the default)."""

    @property
    def key(self) -> str:
        """The process key."""
        return tunnel_key(self.host, self.direction, self.local_port, self.runtime_port)

    @property
    def listen_port(self) -> int:
        """The port the listener binds."""
        return self.local_port if self.direction == FROM_RUNTIME else self.runtime_port

    @property
    def target_port(self) -> int:
        """The port of the service behind the tunnel (on loopback at the other end)."""
        return self.runtime_port if self.direction == FROM_RUNTIME else self.local_port

    @property
    def listen_side(self) -> str:
        """Where the listener is: ``"local"`` or the host's name."""
        return "local" if self.direction == FROM_RUNTIME else self.host
