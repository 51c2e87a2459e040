"""DaskCluster on real sshd hosts with real dask processes: results computed, a worker
SIGKILLed and back, a scheduler killed failing the cluster with every worker stopped,
nothing left behind after cleanup or after the client process is SIGKILLed, and a host
without dask named with its interpreter.

dask starts slowly, so one cluster is shared by the tests that do not kill its parts
(nor restart them: after each test a fixture stops the actors the test started).
A cluster's processes are found by the pids its supervised processes report, never by
their command lines: other processes on this machine (this run's other clusters, other
runs) may run dask workers with the same cluster name or a port number that contains
ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("distributed")

from actorcluster import RuntimeGroup
from actorcluster.cluster.dask_cluster import DaskCluster, RoundRobinLauncher
from actorcluster.errors import MasterLostError, MissingDependencyError
from proctree import alive, cmdline, descendants, kill_tree
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(180)

HOSTS = ["host-1", "host-2", "host-3"]
WORKER = b"distributed.cli.dask_worker"
SCHEDULER = b"distributed.cli.dask_scheduler"


def _running(pid: int | None, kind: bytes) -> bool:
    """Whether ``pid`` is a live dask process of ``kind`` (WORKER or SCHEDULER)."""
    return pid is not None and alive(pid) and kind in cmdline(pid)


def _workers(cluster: DaskCluster) -> list[int]:
    """The pids of the cluster's workers that run now (each supervised process's latest)."""
    pids = [process.pid for process in cluster._worker_launcher.processes]
    return [pid for pid in pids if pid is not None and _running(pid, WORKER)]


def _scheduler(cluster: DaskCluster) -> int:
    """The pid of the cluster's scheduler."""
    process = cluster._master_launcher.process
    assert process is not None
    assert process.pid is not None
    assert _running(process.pid, SCHEDULER)
    return process.pid


@contextlib.contextmanager
def _held(pids: dict[int, bytes]) -> Iterator[dict[int, int]]:
    """pidfds of ``pids`` (each checked to be a dask process of its kind once its pidfd
    is open, so the pidfd is that process even if the pid is reused later)."""
    fds: dict[int, int] = {}
    try:
        for pid, kind in pids.items():
            fds[pid] = os.pidfd_open(pid)
            assert _running(pid, kind), (pid, cmdline(pid))
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def _still_running(fds: dict[int, int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds until every pidfd's process exited; the pids of
    those that did not."""
    poller = select.poll()
    pending = {fd: pid for pid, fd in fds.items()}
    for fd in pending:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        for fd, _ in poller.poll(max(0.0, left) * 1000):
            pending.pop(fd, None)
            poller.unregister(fd)
        if left <= 0:
            break
    return sorted(pending.values())


@pytest.fixture(scope="module")
def shared(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, worker_options={"nthreads": 1}) as cluster:
        cluster.start(worker_count=3)
        yield cluster


def _square(x: int) -> int:  # travels by value: the scheduler cannot import this module
    return x * x


_square.__module__ = "__main__"


def _incarnation(dask_worker: Any) -> tuple[int, str]:  # travels by value, as _square
    """A worker's pid and status (``running`` once the scheduler accepted it)."""
    return os.getpid(), dask_worker.status.name


_incarnation.__module__ = "__main__"


def test_dask_cluster_computes_with_submit_and_dask_array(shared):
    import dask.array as da

    with shared.get_client(timeout=10) as client:
        assert client.submit(_square, 12).result(timeout=60) == 144
        total = da.ones((1000, 1000), chunks=(250, 250)).sum()
        assert client.compute(total).result(timeout=60) == 1_000_000
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 3
        assert all(info["nthreads"] == 1 for info in workers.values())
    assert shared.scheduler_address.startswith("tls://127.0.0.1:")  # TLS by default
    assert sorted(shared._worker_launcher.ports_per_host) == HOSTS


def test_a_sigkilled_worker_is_back_and_the_computation_completes(ssh_bed):
    # A cluster of its own: the restarted worker's actor is this test's, and the test
    # fixture that stops a test's leftover actors would stop it in a shared cluster
    # (a restart whose port the next test could take meanwhile).
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, worker_options={"nthreads": 1}) as cluster:
        cluster.start(worker_count=2)
        victim = cluster._worker_launcher.processes[1]
        killed = victim.pid
        assert _running(killed, WORKER)
        kill_tree(killed, kill_root=True)
        wait_until(
            lambda: victim.restart_count >= 1 and victim.pid not in (None, killed), 30, "restart"
        )
        with cluster.get_client(timeout=10) as client:
            # The scheduler may list the killed worker a moment longer (refusing the new
            # one its name until then): wait until the new one says it registered.
            wait_until(
                lambda: (
                    (victim.pid, "running") in client.run(_incarnation, on_error="ignore").values()
                ),
                60,
                "the restarted worker registered",
            )
            futures = client.map(_square, range(50), pure=False)
            assert client.gather(futures) == [x * x for x in range(50)]
            assert len(client.scheduler_info()["workers"]) == 2
        assert victim.status == "running"
        assert victim.exit_codes[0] == -9


def test_direct_wiring_and_a_killed_scheduler_is_back_on_its_port_with_its_workers(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, tunnels=False, worker_options={"nthreads": 1}) as cluster:
        cluster.start(worker_count=2)
        with cluster.get_client(timeout=10) as client:
            assert client.submit(_square, 3).result(timeout=60) == 9
        port, first = cluster.master_port, _scheduler(cluster)
        kill_tree(first, kill_root=True)
        process = cluster._master_launcher.process
        wait_until(
            lambda: (
                process.restart_count == 1
                and process.pid != first
                and _running(process.pid, SCHEDULER)
            ),
            timeout=10,
            what="the scheduler back",
        )
        assert cluster.master_port == port
        cluster.wait_for_workers(2, timeout=60)
        with cluster.get_client(timeout=10) as client:
            assert client.submit(_square, 4).result(timeout=60) == 16
        assert cluster.failure is None


def test_a_killed_scheduler_past_the_intensity_fails_loudly_with_workers_stopped(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, max_restarts=0, worker_options={"nthreads": 1}) as cluster:
        cluster.start(worker_count=2)
        workers = _workers(cluster)
        assert len(workers) == 2
        with _held(dict.fromkeys(workers, WORKER)) as held:
            kill_tree(_scheduler(cluster), kill_root=True)
            with pytest.raises(MasterLostError, match="workers were stopped"):
                cluster.wait(timeout=30)
            assert _still_running(held, 15) == []
        assert _workers(cluster) == []  # and none was restarted
        with pytest.raises(MasterLostError):
            cluster.get_client()


def test_after_cleanup_no_dask_process_remains(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    cluster = DaskCluster(group, worker_options={"nthreads": 1})
    cluster.start(worker_count=2)
    workers = _workers(cluster)
    assert len(workers) == 2
    with _held({**dict.fromkeys(workers, WORKER), _scheduler(cluster): SCHEDULER}) as held:
        cluster.cleanup()
        assert _still_running(held, 0) == []


CLIENT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = sys.argv[2].split(":")
    from actorcluster import RuntimeGroup
    from actorcluster.cluster.dask_cluster import DaskCluster
    import json
    group = RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=json.loads(sys.argv[1]))
    base = int(sys.argv[4])
    cluster = DaskCluster(
        group,
        list(range(base + 1, base + 40)),
        worker_options={"nthreads": 1},
        scheduler_host=sys.argv[3] or None,
    )
    cluster.start(worker_count=2, master_port=base)
    workers = [process.pid for process in cluster._worker_launcher.processes]
    print(json.dumps([workers, cluster._master_launcher.process.pid]), flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("scheduler_host", ["", "host-1"], ids=["scheduler-here", "on-host-1"])
def test_after_the_client_process_is_sigkilled_no_dask_process_remains(ssh_bed, scheduler_host):
    """Here: the scheduler is the client's descendant (its local agent's child), gone as
    that agent sees its client go; the workers follow. On host-1: the scheduler and that
    host's worker run on until host-1's agent ends its session (the session's grace,
    15 s by default, without a reconnect) and kills them."""
    kwargs = {k: str(v) for k, v in ssh_bed.connection_kwargs.items()}
    paths = ":".join(p for p in sys.path if p)
    # Ports of its own: other clusters on this machine (other tests, other runs) start
    # from dask's and the cluster's default ports and could take one between our probe
    # and our bind, which is not what this test is about.
    base = str(random.randrange(20000, 30000, 50))
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps(kwargs), paths, scheduler_host, base],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        workers, scheduler = json.loads(proc.stdout.readline())
        assert len(workers) == 2
        assert (scheduler in descendants(proc.pid)) == (not scheduler_host)
        with _held({**dict.fromkeys(workers, WORKER), scheduler: SCHEDULER}) as held:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            left = _still_running(held, 40)
            assert left == [], [(pid, cmdline(pid)[:120]) for pid in left]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()


def test_a_host_without_dask_is_named_with_its_interpreter(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS[:1], connection_kwargs=ssh_bed.connection_kwargs)
    workers = RoundRobinLauncher(group, python="/usr/bin/python3")
    cluster = DaskCluster(group, worker_launcher=workers)
    with cluster:
        if (
            os.path.exists("/usr/bin/python3")
            and subprocess.run(
                ["/usr/bin/python3", "-c", "import distributed"], check=False, capture_output=True
            ).returncode
            == 0
        ):
            pytest.skip("/usr/bin/python3 has dask here")
        cluster.start_master()
        with pytest.raises(MissingDependencyError, match="host-1") as caught:
            cluster.start_workers(1)
        assert "/usr/bin/python3" in str(caught.value)
