"""Port tunnels: relays, forwarders and the data that describes one tunnel.

A tunnel is a :class:`TunnelSpec`; :func:`open_forwarder` opens what carries it (a
listener here with ``direct-tcpip`` channels, a ``tcpip-forward`` on the host, an
``ssh -N`` process, or a plain local relay for the ``localhost`` runtime). The
:class:`~actorcluster.actors.tunnel.TunnelActor` owns one forwarder.
"""

from __future__ import annotations

from actorcluster.tunnels.forwarders import Forwarder, open_forwarder
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
    "TunnelSpec",
    "open_forwarder",
    "port_is_free",
    "tunnel_key",
]
