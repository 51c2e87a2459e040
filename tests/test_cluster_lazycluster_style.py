"""A master/worker launcher pair written exactly the lazycluster way (its docs and its
own ``dask_cluster.py``: the master a ``Popen`` here, workers sent as tasks with
``execute_task(..., omit_on_join=True)``, ``setup_worker_ssh_tunnels()``, ``self.log``,
a cluster subclass that assigns its launchers after ``super().__init__()``), only the
import changed, on real sshd hosts: the cluster supervises all of it."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from subprocess import Popen
from typing import TYPE_CHECKING

import pytest

from actorcluster import PortInUseError, Runtime, RuntimeGroup, RuntimeTask
from actorcluster.cluster import MasterLauncher, MasterWorkerCluster, WorkerLauncher
from actorcluster.cluster.exceptions import MasterStartError
from port_blocks import free_block
from proctree import alive, kill_tree, matching
from waiting import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(180)

HOSTS = ["host-1", "host-2", "host-3"]

MASTER = """
import socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
def serve(conn):
    with conn:
        line = conn.makefile().readline()
        with open(sys.argv[2], "a") as registry:
            registry.write(line)
        conn.recv(1)  # the worker stays registered while it lives
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

WORKER = """
import os, socket, sys, threading, time
master_port, port, marker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
def answer():
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(f"{marker} pid={os.getpid()}".encode())
threading.Thread(target=answer, daemon=True).start()
deadline = time.monotonic() + 30
while True:  # the master may still be starting
    try:
        master = socket.create_connection(("127.0.0.1", master_port), 5)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
master.settimeout(None)
master.sendall(f"{marker} {port}\\n".encode())
master.recv(1)  # the master went away: so does the worker
"""


class EchoMasterLauncher(MasterLauncher):
    """lazycluster's LocalMasterLauncher, with an echo master for dask's scheduler."""

    registry = ""

    def start(self, ports, timeout=3, debug=False):
        _ports = ports.copy() if isinstance(ports, list) else ports
        if debug:
            self.log.debug("The debug flag has no effect in EchoMasterLauncher.")
        if not isinstance(_ports, list):
            if self._group.has_free_port(_ports, exclude_hosts=Runtime.LOCALHOST):
                master_port = _ports
            else:
                raise PortInUseError(_ports, self._group)
        else:
            master_port = self._group.get_free_port(_ports)  # Raises NoPortsLeftError
            _ports = [port for port in _ports if port != master_port]
        self._process = Popen([sys.executable, "-c", MASTER, str(master_port), self.registry])
        if not _listens(master_port, timeout * 10):
            cause = f"The master port {master_port} is still free after {timeout} seconds."
            raise MasterStartError("localhost", master_port, cause)
        self._port = master_port
        self.log.info("Echo master started on localhost on port " + str(self._port))
        self._group.expose_port_to_runtimes(self._port)
        return _ports if isinstance(_ports, list) else []


class EchoWorkerLauncher(WorkerLauncher):
    """lazycluster's RoundRobinLauncher, with echo workers."""

    def __init__(self, runtime_group):
        super().__init__(runtime_group)
        self._ports = None
        self.log.debug("EchoWorkerLauncher initialized.")

    def start(self, worker_count, master_port, ports, debug=False):
        self._ports = ports.copy()
        hosts = self._group.hosts
        for worker_index in range(worker_count):
            host = hosts[worker_index % self._group.runtime_count]
            self.log.debug(f"Launch worker with index {worker_index} on Runtime {host}")
            worker_port = self._group.get_free_port(self._ports)  # Raises NoPortsLeftError
            self._ports = [port for port in self._ports if port != worker_port]
            marker = f"lazy-worker-{worker_index}-{host}"
            task = RuntimeTask("launch-echo-worker-" + str(worker_index))
            task.run_command(
                f"python3 -c {shlex.quote(WORKER)} {master_port} {worker_port} {marker}"
            )
            self._group.execute_task(task, host, omit_on_join=True, debug=debug)
            self._ports_per_host.setdefault(host, []).append(worker_port)
        self.setup_worker_ssh_tunnels()
        return self._ports


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


def _answer(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), 5) as conn:
        return conn.recv(1024).decode()


def _answers(port: int) -> str:
    try:
        return _answer(port)
    except OSError:
        return ""


def _echo_cluster(master_port: int):
    class EchoCluster(MasterWorkerCluster):
        DEFAULT_MASTER_PORT = master_port

        def __init__(self, runtime_group, ports=None, master_launcher=None, worker_launcher=None):
            super().__init__(runtime_group, ports)
            self._master_launcher = master_launcher or EchoMasterLauncher(runtime_group)
            self._worker_launcher = worker_launcher or EchoWorkerLauncher(runtime_group)

    return EchoCluster


def _registered(registry: Path) -> list[str]:
    return registry.read_text().splitlines() if registry.exists() else []


def test_a_lazycluster_style_pair_is_supervised_and_leaves_nothing(ssh_bed, tmp_path):
    ports = free_block(30, 35000)
    registry = tmp_path / "registry"
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
    master = EchoMasterLauncher(group)
    master.registry = str(registry)
    cluster = _echo_cluster(ports[0])(group, ports[1:], master_launcher=master)
    workers = cluster._worker_launcher
    try:
        cluster.start(worker_count=3)
        assert cluster.master_port == ports[0]  # the default port, given as an int
        worker_ports = {h: list(p) for h, p in workers.ports_per_host.items()}
        assert sorted(worker_ports) == sorted(HOSTS)
        taken = {p for p_list in worker_ports.values() for p in p_list} | {ports[0]}
        assert taken <= cluster._context.pool.taken  # the launcher's ports are the pool's
        for (port,) in worker_ports.values():  # every worker answers here
            wait_until(lambda p=port: _answers(p).startswith("lazy-worker"), what="answers")
        wait_until(lambda: len(_registered(registry)) == 3, what="3 workers registered")
        # a worker SIGKILLed on its host is back, on the same port, within 10 s
        port = worker_ports["host-2"][0]
        before = _answer(port)
        (pid,) = matching(b"lazy-worker-1-host-2")
        kill_tree(pid, kill_root=True)
        wait_until(lambda: _answers(port) not in ("", before), timeout=10, what="worker back")
        # the master killed is back on the same port within 10 s, its workers registered
        first = master.process
        wait_until(lambda: len(_registered(registry)) == 4, what="the restarted worker registered")
        kill_tree(first.pid, kill_root=True)
        wait_until(lambda: master.process is not first and _listens(ports[0], 0.2), timeout=10,
                   what="the master back")  # fmt: skip
        assert cluster.master_port == ports[0] and master.process.poll() is None
        wait_until(lambda: len(_registered(registry)) >= 7, timeout=10, what="re-registered")
        assert cluster.failure is None
        master_pid = master.process.pid
        assert callable(master.process.stop)  # as a supervised process's
        handles = workers.processes  # the adopted tasks, Popen-like
        assert len(handles) == 3 and all(h.poll() is None and h.returncode is None for h in handles)
        with pytest.raises(subprocess.TimeoutExpired):
            handles[0].wait(0.05)
    finally:
        cluster.cleanup()
    assert not matching(b"lazy-worker-")
    assert not alive(master_pid)
    assert not matching(b"registry.write(line)")
    assert all(h.poll() is not None and h.wait(5) == h.returncode for h in handles)


def test_cleanup_stops_a_popen_master_and_every_process_it_started(tmp_path):
    launcher = EchoMasterLauncher(None)
    launcher._process = Popen(["sh", "-c", f"sleep 300 & echo $! > {tmp_path}/child; wait"])
    wait_until(lambda: (tmp_path / "child").exists() and (tmp_path / "child").read_text())
    child = int((tmp_path / "child").read_text())
    assert alive(child)
    launcher.cleanup()
    assert launcher.process.poll() is not None
    wait_until(lambda: not alive(child), timeout=5, what="its child gone")
