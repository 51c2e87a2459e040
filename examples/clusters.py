"""Clusters: a Dask cluster on a group of hosts, supervised.

python examples/clusters.py [HOST...]      (default: localhost; needs distributed)
"""

from __future__ import annotations

import sys

from actorcluster import RuntimeGroup
from actorcluster.cluster.dask_cluster import DaskCluster

hosts = sys.argv[1:] or ["localhost"]


def square(n: int) -> int:
    return n * n


with RuntimeGroup(hosts=hosts) as group:
    cluster = DaskCluster(group)
    cluster.start(worker_count=2)  # the scheduler here, workers on the hosts
    try:
        client = cluster.get_client()
        total = client.submit(sum, client.map(square, range(100))).result()
        print("sum of squares below 100:", total)
        print("workers:", len(client.scheduler_info()["workers"]))
        client.close()
    finally:
        cluster.cleanup()  # scheduler and workers stopped, nothing left on the hosts
