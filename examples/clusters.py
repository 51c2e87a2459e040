"""Clusters: a Dask cluster on a group of hosts, its workers supervised.

python examples/clusters.py [HOST...]      (default: localhost; needs distributed)
"""

from __future__ import annotations

import sys

from actorcluster import RuntimeGroup
from actorcluster.cluster.dask_cluster import DaskCluster

hosts = sys.argv[1:] or ["localhost"]


def square(n: int) -> int:
    return n * n


# The scheduler runs here, the workers on the hosts (round robin), reached through
# the hosts' SSH connections; a worker that dies is started again.
with DaskCluster(RuntimeGroup(hosts=hosts)) as cluster:  # cleanup() at the end
    cluster.start(worker_count=2)
    print("scheduler:", cluster.scheduler_address)
    with cluster.get_client(timeout=30) as client:
        total = client.submit(sum, client.map(square, range(100))).result()
        print("sum of squares below 100:", total)
        print("workers:", len(client.scheduler_info()["workers"]))
# Leaving the block stopped the workers and the scheduler and cleaned up the hosts.
