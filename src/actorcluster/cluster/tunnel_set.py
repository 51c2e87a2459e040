"""The tunnels one cluster opened (:class:`ClusterTunnels`): opened through the
runtimes' own connections, remembered, and closed all at once at the end."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actorcluster._limits import TUNNEL_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError
from actorcluster.groups.fanout import on_threads

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from actorcluster.runtimes import Runtime

__all__ = ["CARRIER", "ClusterTunnels", "Tunnel"]

log = get_logger(__name__)

CARRIER = "paramiko"
"""What carries a cluster's tunnels: the runtime's own connection. They are opened many
at once at start and carry small messages: one channel each opens without a login and,
measured with dask (benchmarks/bench_cluster.py), started the cluster about 0.4 s sooner
and ran its tasks 1.2x faster than an ``ssh -N`` process per tunnel."""
Tunnel = tuple["Runtime", str]
"""A tunnel the cluster opened: its runtime and process key."""


class ClusterTunnels:
    """The cluster's tunnels (a base of the cluster's context); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tunnels: list[Tunnel] = []
        self._exposed: set[tuple[str, str, int]] = set()

    def expose_from(self, runtime: Runtime, runtime_port: int, local_port: int) -> Tunnel:
        """A local forward: ``local_port`` here reaches ``runtime_port`` on the host."""
        key = runtime.expose_port_from_runtime(runtime_port, local_port, carrier=CARRIER)
        tunnel = (runtime, key)
        with self._lock:
            self._tunnels.append(tunnel)
        return tunnel

    def expose_to(self, runtime: Runtime, local_port: int, runtime_port: int) -> Tunnel:
        """A remote forward: ``runtime_port`` on the host reaches ``local_port`` here."""
        key = runtime.expose_port_to_runtime(local_port, runtime_port, carrier=CARRIER)
        tunnel = (runtime, key)
        with self._lock:
            self._tunnels.append(tunnel)
        return tunnel

    def first_time(self, key: tuple[str, str, int]) -> bool:
        """True the first time ``key`` (a tunnel the cluster opened) is asked for;
        forgotten when the tunnels are closed."""
        with self._lock:
            if key in self._exposed:
                return False
            self._exposed.add(key)
            return True

    def open_all(self, runtimes: dict[str, Runtime], open_one: Callable[[Runtime], Any]) -> None:
        """Call ``open_one`` for every runtime at once (raising the first failure)."""
        on_threads(runtimes, open_one, what="opening a tunnel").raise_first()

    def close_tunnels(self) -> None:
        """Close every tunnel the cluster opened (all at once)."""
        with self._lock:
            tunnels, self._tunnels = self._tunnels, []
            self._exposed.clear()
        self._close_all(tunnels)

    def drop_tunnels(self, tunnels: Sequence[Tunnel]) -> None:
        """Close these of the cluster's tunnels (all at once)."""
        with self._lock:
            self._tunnels = [item for item in self._tunnels if item not in tunnels]
        self._close_all(tunnels)

    @staticmethod
    def _close_all(tunnels: Sequence[Tunnel]) -> None:
        on_threads(
            {f"{runtime.host}:{key}": (runtime, key) for runtime, key in tunnels},
            lambda item: _close(*item),
            TUNNEL_TIMEOUT,
            "closing a tunnel",
        ).raise_first()


def _close(runtime: Runtime, key: str) -> None:
    try:
        runtime.stop_process(key)
    except ActorClusterError as error:
        log.info("cluster.tunnel.close_failed", host=runtime.host, key=key, error=str(error))
