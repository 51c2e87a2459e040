"""Port tunnels: relays, forwarders and the data that describes one tunnel.

A tunnel is a :class:`TunnelSpec`; :func:`open_forwarder` opens what carries it on a
:class:`TunnelHost` (a runtime): an ``ssh -N`` process (the default where OpenSSH's
client can log in as the runtime does, see :func:`default_carrier`), a listener here
with ``direct-tcpip`` channels or a ``tcpip-forward`` on the host (the paramiko relay),
or a plain local relay for the ``localhost`` runtime. The runtime's tunnel actor owns
one forwarder.
"""

from __future__ import annotations

from actorcluster.tunnels.carrier import default_carrier
from actorcluster.tunnels.forwarders import (
    Forwarder,
    TunnelHost,
    TunnelHostOptions,
    open_forwarder,
)
from actorcluster.tunnels.local import port_is_free
from actorcluster.tunnels.spec import (
    CARRIERS,
    DELIMITER,
    FROM_RUNTIME,
    LOOPBACK,
    TO_RUNTIME,
    TunnelSpec,
    tunnel_key,
)

__all__ = [
    "CARRIERS",
    "DELIMITER",
    "FROM_RUNTIME",
    "LOOPBACK",
    "TO_RUNTIME",
    "Forwarder",
    "TunnelHost",
    "TunnelHostOptions",
    "TunnelSpec",
    "default_carrier",
    "open_forwarder",
    "port_is_free",
    "tunnel_key",
]
