"""Dask the way lazycluster users know it, on real sshd hosts: a launcher pair written
as lazycluster's own ``dask_cluster.py`` (the scheduler a ``Popen`` here, workers
round robin by tasks) computes before and after a worker and the scheduler are killed;
``get_client()`` is the default client; a host without this client's ``distributed``
is named with its interpreter and the command that installs it, before anything
starts."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from subprocess import Popen

import pytest

pytest.importorskip("distributed")

import dask
import dask.array as da

from actorcluster import PortInUseError, Runtime, RuntimeGroup, RuntimeTask
from actorcluster.cluster import MasterLauncher, WorkerLauncher
from actorcluster.cluster.dask_cluster import DaskCluster, RoundRobinLauncher
from actorcluster.cluster.exceptions import MasterStartError
from actorcluster.errors import MissingDependencyError
from port_blocks import free_block
from proctree import alive, cmdline, kill_tree, matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(240)

HOSTS = ["host-1", "host-2", "host-3"]


def _listens(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return True
    return False


class LocalMasterLauncher(MasterLauncher):
    """lazycluster's, but ``python -m`` for ``dask-scheduler`` and no dashboard."""

    def start(self, ports, timeout=3, debug=False):
        _ports = ports.copy() if isinstance(ports, list) else ports
        if debug:
            self.log.debug("The debug flag has no effect in LocalMasterLauncher.")
        if not isinstance(_ports, list):
            if self._group.has_free_port(_ports, exclude_hosts=Runtime.LOCALHOST):
                master_port = _ports
            else:
                raise PortInUseError(_ports, self._group)
        else:
            master_port = self._group.get_free_port(_ports)  # Raises NoPortsLeftError
            _ports = [port for port in _ports if port != master_port]
        scheduler = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--no-dashboard"]
        self._process = Popen([sys.executable, "-m", *scheduler, "--port", str(master_port)])
        if not _listens(master_port, timeout * 10):
            cause = f"The master port {master_port} is still free after {timeout} seconds."
            raise MasterStartError("localhost", master_port, cause)
        self._port = master_port
        self.log.info("Dask scheduler started on localhost on port " + str(self._port))
        self._group.expose_port_to_runtimes(self._port)
        return _ports if isinstance(_ports, list) else []


class RoundRobinLazyLauncher(WorkerLauncher):
    """lazycluster's RoundRobinLauncher (without its pip install step)."""

    def __init__(self, runtime_group):
        super().__init__(runtime_group)
        self._ports = None

    def start(self, worker_count, master_port, ports, debug=False):
        self._ports = ports.copy()
        hosts = self._group.hosts
        runtimes = self._group.runtimes
        for worker_index in range(worker_count):
            runtime_index = (self._group.runtime_count + worker_index) % self._group.runtime_count
            host = hosts[runtime_index]
            working_dir = runtimes[runtime_index].working_dir
            worker_port = self._group.get_free_port(self._ports)  # Raises NoPortsLeftError
            self._ports = [port for port in self._ports if port != worker_port]
            task = RuntimeTask("launch-dask-worker-" + str(worker_index))
            task.run_command(
                f"{sys.executable} -m distributed.cli.dask_worker --worker-port={worker_port} "
                f"--host 127.0.0.1 --no-nanny --nthreads 1 --no-dashboard "
                f"--local-directory={working_dir} localhost:{master_port}"
            )
            self._group.execute_task(task, host, omit_on_join=True, debug=debug)
            self._ports_per_host.setdefault(host, []).append(worker_port)
        self.setup_worker_ssh_tunnels()
        return self._ports


class LazyDaskCluster(DaskCluster):
    """lazycluster's DaskCluster: launchers assigned after ``super().__init__()``."""

    def __init__(self, runtime_group, ports=None, master_launcher=None, worker_launcher=None):
        super().__init__(runtime_group, ports)
        self._master_launcher = master_launcher or LocalMasterLauncher(runtime_group)
        self._worker_launcher = worker_launcher or RoundRobinLazyLauncher(runtime_group)


def _array_sum() -> float:
    return float(da.ones((400, 400), chunks=(100, 100)).sum().compute())  # the default client


def _worker_pids(client) -> set[int]:
    try:
        return set(client.run(os.getpid).values())
    except OSError:  # a worker just killed: the scheduler cannot reach it yet
        return set()


def test_a_lazycluster_style_dask_pair_computes_through_worker_and_scheduler_kills(ssh_bed):
    ports = free_block(40, 36000)
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
    cluster = LazyDaskCluster(group, ports)
    master = cluster._master_launcher
    try:
        cluster.start(worker_count=3)
        client = cluster.get_client(timeout=10)
        assert _array_sum() == 160000.0
        before = _worker_pids(client)
        assert len(before) == 3
        victim = sorted(before)[0]
        kill_tree(victim, kill_root=True)
        wait_until(
            lambda: len(pids := _worker_pids(client)) == 3 and victim not in pids,
            timeout=30,
            what="the killed worker back and registered",
        )
        assert _array_sum() == 160000.0
        port, first = cluster.master_port, master.process
        kill_tree(first.pid, kill_root=True)
        wait_until(  # a restart, then a scheduler's start: ~3 s here, more under load
            lambda: master.process is not first and _listens(port, 0.2),
            timeout=30,
            what="the scheduler back on its port",
        )
        # The old client's scheduler died under it: distributed's close() may then raise
        # from its own reconnect loop ("ConnectionPool is closed"); that is dask's, not ours.
        with contextlib.suppress(RuntimeError, OSError):
            client.close()
        client = cluster.get_client(timeout=10)
        client.wait_for_workers(3, timeout=60)
        assert _array_sum() == 160000.0
        client.close()
        scheduler = master.process.pid
        worker_ports = [p for ps in cluster._worker_launcher.ports_per_host.values() for p in ps]
    finally:
        cluster.cleanup()
    assert not alive(scheduler)
    assert not [port for port in worker_ports if matching(f"--worker-port={port} ".encode())]


def test_get_client_is_the_default_client_and_delayed_runs_on_a_host(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, worker_options={"nthreads": 1}) as cluster:
        cluster.start()
        with cluster.get_client():
            pid = dask.delayed(os.getpid)().compute()
            assert pid != os.getpid()
            assert b"distributed.cli.dask_worker" in cmdline(pid)


def _fake_python(tmp_path, version: str | None):
    """An interpreter whose ``distributed`` is ``version`` (None: it has none)."""
    site = tmp_path / "site"
    if version is not None:
        (site / "distributed").mkdir(parents=True)
        (site / "distributed" / "__init__.py").write_text("")
        info = site / f"distributed-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: distributed\nVersion: {version}\n"
        )
    wrapper = tmp_path / "python-fake"
    flags = (
        f'PYTHONPATH={site} exec {sys.executable} "$@"'
        if version
        else f'exec {sys.executable} -S "$@"'
    )
    wrapper.write_text(f"#!/bin/sh\n{flags}\n")
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("version", [None, "0.0.1"], ids=["missing", "another-version"])
def test_a_host_without_this_clients_distributed_is_named_before_start(ssh_bed, tmp_path, version):
    python = _fake_python(tmp_path, version)
    if version is None and os.system(f"{python} -c 'import distributed' 2>/dev/null") == 0:
        pytest.skip("distributed is importable without site-packages here")
    group = RuntimeGroup(hosts=HOSTS[:1], connection_kwargs=ssh_bed.connection_kwargs)
    cluster = DaskCluster(group, worker_launcher=RoundRobinLauncher(group, python=python))
    assert DaskCluster.PIP_INSTALL_COMMAND == 'pip install -q "dask[complete]"'
    with cluster:
        cluster.start_master()
        with pytest.raises(MissingDependencyError) as caught:
            cluster.start_workers(1)
    message = str(caught.value)
    assert "host-1" in message and "-m pip install -q" in message and "install_dask=True" in message
    assert sys.executable in message  # the interpreter the wrapper ran
    if version:
        assert "0.0.1" in message
    assert not matching(b"distributed.cli.dask_worker " + python.encode())
