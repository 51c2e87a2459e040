"""A cluster's events: starting, its master ready, its processes (on its hosts), stopped;
``cluster.events()`` sees the cluster's and its hosts' events only."""

from __future__ import annotations

import pytest

from test_cluster_generic import HOSTS, _cluster

pytestmark = pytest.mark.timeout(120)


def test_a_cluster_publishes_its_lifecycle_and_its_processes(ssh_bed):
    cluster, master, _ = _cluster(ssh_bed, tunnels=False)
    events = cluster.events()
    with cluster:
        cluster.start(worker_count=3, master_port=None)
    seen = list(events.iter(timeout=2))
    events.close()
    kinds = [e.kind for e in seen if e.kind.startswith("cluster.")]
    assert kinds == ["cluster.starting", "cluster.master_ready", "cluster.stopped"]
    assert {e.cluster for e in seen if e.kind.startswith("cluster.")} == {cluster.name}
    ready = next(e for e in seen if e.kind == "cluster.master_ready")
    assert ready.port == master.port
    started = [e for e in seen if e.kind == "process.started"]
    # The workers run on the group's hosts (the master runs here, watched locally).
    assert sorted(e.host for e in started) == sorted(HOSTS)
    assert [e.kind for e in seen if e.kind.startswith("process.")].count("process.stopped") == 3
    assert {e.host for e in seen} <= {*HOSTS, ""}
