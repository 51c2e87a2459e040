"""A notebook's summary of a cluster (its ``_repr_html_``): its state, where its master
listens, and each worker with its host, status and restarts. Nothing here asks a host:
it shows what the cluster's supervision already knows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorcluster._html import summary_table

if TYPE_CHECKING:
    from actorcluster.cluster.runtime_cluster import MasterWorkerCluster

__all__ = ["cluster_html", "cluster_state"]


def cluster_state(cluster: MasterWorkerCluster) -> str:
    """``not started``, ``running``, ``stopped`` or ``failed: ErrorType``."""
    if cluster._cleaned:
        return "stopped"
    failure = cluster.failure
    if failure is not None:
        return f"failed: {type(failure).__name__}"
    return "not started" if cluster.master_port is None else "running"


def cluster_html(cluster: MasterWorkerCluster) -> str:
    """The cluster's state, hosts, master and workers, as HTML."""
    rows: list[tuple[str, object]] = [("hosts", ", ".join(cluster.runtime_group.hosts))]
    address = getattr(cluster, "scheduler_address", None)
    rows.append(("master", address or cluster.master_port))
    dashboard = getattr(cluster, "dashboard_link", None)
    if dashboard:
        rows.append(("dashboard", dashboard))
    launcher = cluster._worker_launcher
    workers = launcher.processes if launcher is not None else []
    lines = [
        f"{worker.name} on {worker.host}: {worker.status}, {worker.restart_count} restart(s)"
        for worker in workers
    ]
    rows.append((f"workers ({len(workers)})", "\n".join(lines) or "none"))
    failure = cluster.failure
    if failure is not None:
        rows.append(("error", str(failure)))
    return summary_table(type(cluster).__name__, cluster.name, cluster_state(cluster), rows)
