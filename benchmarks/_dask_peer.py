"""dask.distributed's SSHCluster side of bench_engine.py; runs in dask's own virtualenv.

``python _dask_peer.py SPEC_JSON``: SPEC is ``{"hosts": [{"address", "port"}, ...],
"user", "key", "tasks", "rounds", "calls"}``. Starts an ``SSHCluster`` whose scheduler is
on the first host and one single-threaded worker on every host (this virtualenv's
python on both ends, so versions match), then times: the start until every worker is
up, ``client.submit(f).result()`` (``calls`` times), and ``rounds`` rounds of ``tasks``
tiny functions in flight at once (``client.map``, then ``gather``), checking every
result. Prints one JSON line last.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


def _cluster(spec: dict[str, Any]) -> Any:
    from dask.distributed import SSHCluster

    hosts = [spec["hosts"][0], *spec["hosts"]]  # the first one runs the scheduler too
    options = [
        {
            "known_hosts": None,
            "client_keys": [spec["key"]],
            "port": host["port"],
            "username": spec["user"],
        }
        for host in hosts
    ]
    return SSHCluster(
        [host["address"] for host in hosts],
        connect_options=options,
        remote_python=sys.executable,
        worker_options={"nthreads": 1},
        scheduler_options={"port": 0, "dashboard_address": ":0"},
    )


def _one() -> int:
    return 1


def _identity(value: int) -> int:
    return value


def main(spec: dict[str, Any]) -> dict[str, list[float]]:
    """Measure; return the samples by name."""
    from dask.distributed import Client

    logging.disable(logging.WARNING)
    started = time.perf_counter()
    with _cluster(spec) as cluster, Client(cluster) as client:
        client.wait_for_workers(len(spec["hosts"]), timeout=120)
        results: dict[str, list[float]] = {"start": [time.perf_counter() - started]}
        calls = []
        client.submit(_one, pure=False).result(timeout=60)
        for _ in range(spec["calls"]):
            began = time.perf_counter()
            client.submit(_one, pure=False).result(timeout=60)
            calls.append(time.perf_counter() - began)
        results["submit_result"] = calls
        results["tasks_per_second"] = [_round(client, spec["tasks"]) for _ in range(spec["rounds"])]
    return results


def _round(client: Any, count: int) -> float:
    began = time.perf_counter()
    futures = client.map(_identity, range(count), pure=False)
    values = client.gather(futures)
    seconds = time.perf_counter() - began
    if values != list(range(count)):
        raise RuntimeError("dask lost or changed results")
    return count / seconds


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
