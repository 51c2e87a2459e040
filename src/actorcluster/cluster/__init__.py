"""Clusters on a group: lazycluster's ``cluster`` package (``MasterLauncher``,
``WorkerLauncher``, ``RuntimeCluster``, ``MasterWorkerCluster``; ``DaskCluster`` in
:mod:`actorcluster.cluster.dask_cluster`), on a supervising cluster coordinator."""

from __future__ import annotations

from actorcluster.cluster.exceptions import MasterStartError
from actorcluster.cluster.runtime_cluster import (
    MasterLauncher,
    MasterWorkerCluster,
    RuntimeCluster,
    WorkerLauncher,
)

__all__ = [
    "MasterLauncher",
    "MasterStartError",
    "MasterWorkerCluster",
    "RuntimeCluster",
    "WorkerLauncher",
]
