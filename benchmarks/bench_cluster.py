"""Issue 15: DaskCluster against dask's own SSHCluster, same hosts, same run.

Times ``DaskCluster(group).start(worker_count=4)`` until 4 workers are registered (both
wirings), and dask's ``SSHCluster`` with the same hosts, worker options (``nthreads=1``)
and this python on both ends until 4 workers are registered; then 1,000 tiny tasks
(``client.map`` + ``gather``) through each cluster. Prints both numbers and the ratios.
Timings never decide anything; run it as ``python3 benchmarks/bench_cluster.py
[--quick]`` (``--quick`` or ``BENCH_QUICK=1``: 2 workers, 20 tasks, no SSHCluster).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import _benchlib  # noqa: E402
from sshbed import SshBed  # noqa: E402

TASKS = 1000
WORKERS = 4


def _identity(value: int) -> int:
    return value


_identity.__module__ = "__main__"


def _tasks(client) -> float:
    began = time.perf_counter()
    values = client.gather(client.map(_identity, range(TASKS), pure=False))
    assert values == list(range(TASKS))
    return time.perf_counter() - began


def ours(bed: SshBed, tunnels: bool) -> tuple[float, float]:
    from actorcluster import RuntimeGroup
    from actorcluster.cluster.dask_cluster import DaskCluster

    group = RuntimeGroup(hosts=[h.name for h in bed.hosts], connection_kwargs=bed.connection_kwargs)
    cluster = DaskCluster(group, tunnels=tunnels, worker_options={"nthreads": 1})
    try:
        began = time.perf_counter()
        cluster.start(worker_count=WORKERS)
        started = time.perf_counter() - began
        with cluster.get_client(timeout=10) as client:
            client.submit(_identity, 1, pure=False).result(60)
            return started, _tasks(client)
    finally:
        cluster.cleanup()


def theirs(bed: SshBed) -> tuple[float, float]:
    from dask.distributed import Client, SSHCluster

    hosts = [bed.hosts[0], *bed.hosts, bed.hosts[0]][: WORKERS + 1]
    options = [
        {"known_hosts": None, "client_keys": [str(bed.client_key)], "port": h.port,
         "username": bed.user}
        for h in hosts
    ]  # fmt: skip
    began = time.perf_counter()
    with (
        SSHCluster(
            [h.address for h in hosts],
            connect_options=options,
            remote_python=sys.executable,
            worker_options={"nthreads": 1},
            scheduler_options={"port": 0, "dashboard_address": ":0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(WORKERS, timeout=120)
        started = time.perf_counter() - began
        client.submit(_identity, 1, pure=False).result(60)
        return started, _tasks(client)


def main() -> None:
    """Start both clusters (and SSHCluster unless quick), run the tasks, print the table."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0], quick_skips=("dask",))
    if args.quick:
        _benchlib.shrink(globals(), TASKS=20, WORKERS=2)
    logging.disable(logging.WARNING)
    with SshBed(Path(tempfile.mkdtemp(prefix="bench-cluster-")), count=3) as bed:
        rows = {
            "ours, tunnels": ours(bed, True),
            "ours, direct": ours(bed, False),
        }
        peer = "dask" not in args.skip and importlib.util.find_spec("asyncssh") is not None
        if peer:
            rows["dask SSHCluster"] = theirs(bed)
    print(f"{'':18} {f'start to {WORKERS} workers (s)':>24} {f'{TASKS:,} tasks (s)':>16}")
    for name, (start, tasks) in rows.items():
        print(f"{name:18} {start:24.2f} {tasks:16.2f}")
    if not peer:
        why = "quick mode" if args.quick else "it needs asyncssh: pip install -e '.[bench]'"
        print(f"dask SSHCluster: skipped ({why})")
        return
    peer_start, peer_tasks = rows["dask SSHCluster"]
    for name in ("ours, tunnels", "ours, direct"):
        start, tasks = rows[name]
        print(
            f"{name}: start {peer_start / start:.2f}x faster than SSHCluster "
            f"(target >= 2: {'met' if start * 2 <= peer_start else 'MISSED'}); "
            f"tasks {peer_tasks / tasks:.2f}x (target >= 1: "
            f"{'met' if tasks <= peer_tasks else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
