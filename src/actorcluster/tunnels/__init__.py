"""Port tunnels: relays, forwarders and the data that describes one tunnel.

A tunnel is a :class:`TunnelSpec`; :func:`open_forwarder` opens what carries it on a
:class:`TunnelHost` (a runtime): a listener here with ``direct-tcpip`` channels, a
``tcpip-forward`` on the host, an ``ssh -N`` process, or a plain local relay for the
``localhost`` runtime. The runtime's tunnel actor owns one forwarder.
"""

from __future__ import annotations

from actorcluster.tunnels.forwarders import (
    Forwarder,
    TunnelHost,
    TunnelHostOptions,
    open_forwarder,
)
from actorcluster.tunnels.local import port_is_free
from actorcluster.tunnels.spec import (
    CARRIERS,
    FROM_RUNTIME,
    KEY_DELIMITER,
    LOOPBACK,
    TO_RUNTIME,
    TunnelSpec,
)

__all__ = [
    "CARRIERS",
    "FROM_RUNTIME",
    "KEY_DELIMITER",
    "LOOPBACK",
    "TO_RUNTIME",
    "Forwarder",
    "TunnelHost",
    "TunnelHostOptions",
    "TunnelSpec",
    "open_forwarder",
    "port_is_free",
]
