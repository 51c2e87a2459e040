"""Ports a launcher exposes the lazycluster way, as the cluster's tunnels.

lazycluster's launchers call ``group.expose_port_to_runtimes(port)`` (the master) and
``setup_worker_ssh_tunnels()`` (each worker of ``ports_per_host`` reachable here and on
every other host). Here those tunnels are the cluster's (closed at its cleanup), each
opened once (a relaunched master asks again), and none is opened where a host shares
this machine's loopback at the same port: it reaches the port already (and a forward
there would collide with the process itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.cluster.context import ClusterContext

__all__ = ["expose_here_to", "expose_to_group"]


def expose_here_to(
    context: ClusterContext, hosts: Sequence[str], local_port: int, port: int
) -> None:
    """``local_port`` here reachable at ``port`` on ``hosts`` (all at once)."""
    shared = context.shared_loopback()
    wanted = [
        host
        for host in hosts
        if not (shared.get(host, False) and port == local_port)
        and context.first_time(("to", host, port))
    ]
    by_host = context.group.get_runtimes()
    context.open_all(
        {host: by_host[host] for host in wanted},
        lambda rt: context.expose_to(rt, local_port, port),
    )


def expose_to_group(context: ClusterContext, host: str, runtime_port: int, port: int) -> None:
    """``runtime_port`` of ``host`` reachable at ``port`` here and on every other host."""
    shared = context.shared_loopback()
    by_host = context.group.get_runtimes()
    if not (shared.get(host, False) and port == runtime_port) and context.first_time(
        ("from", host, port)
    ):
        context.expose_from(by_host[host], runtime_port, port)
    expose_here_to(context, [other for other in by_host if other != host], port, port)
