"""MasterWorkerCluster with a custom launcher pair (a TCP echo master, workers that talk
to it) on real sshd hosts: the pluggable strategies, supervision of the workers and the
master (rest_for_one), a master lost past the intensity failing the cluster, and the
documented errors for ports and a master that never comes up."""

from __future__ import annotations

import shlex
import socket

import pytest

from actorcluster import (
    MasterStartError,
    NoPortsLeftError,
    PortInUseError,
    RuntimeGroup,
)
from actorcluster.cluster import MasterLauncher, MasterWorkerCluster, WorkerLauncher
from actorcluster.cluster.runtime_cluster import RuntimeCluster
from actorcluster.errors import MasterLostError
from port_blocks import free_block
from proctree import kill_tree, matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(120)

HOSTS = ["host-1", "host-2", "host-3"]

ECHO_MASTER = """
import socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen()
print("master up", flush=True)
def serve(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(b"echo:" + data)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

ECHO_WORKER = """
import socket, sys, time
with socket.create_connection((sys.argv[1], int(sys.argv[2])), 10) as conn:
    conn.settimeout(None)
    conn.sendall(sys.argv[3].encode())
    print(conn.recv(1024).decode(), flush=True)
    conn.recv(1)  # stay up while the master does
"""


class EchoMaster(MasterLauncher):
    def get_launch_command(self, port, bind_address):
        script = shlex.quote(ECHO_MASTER)
        return f"exec python3 -c {script} {bind_address} {port}"


class EchoWorkers(WorkerLauncher):
    def get_launch_command(self, slot):
        script = shlex.quote(ECHO_WORKER)
        marker = f"{slot.host}-worker-{slot.index}"
        return f"exec python3 -c {script} {slot.master_address} {slot.master_port} {marker}"


class NeverUp(MasterLauncher):
    def get_launch_command(self, port, bind_address):
        return "echo 'cannot bind: config missing' >&2; exec sleep 60"


class Crashing(MasterLauncher):
    def get_launch_command(self, port, bind_address):
        return "echo 'fatal: bad option' >&2; exit 2"


def _cluster(bed, master_cls=EchoMaster, ports=None, **kwargs):
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=bed.connection_kwargs)
    group_ports = ports or free_block(40, 31000)
    master = master_cls(group)
    workers = EchoWorkers(group)
    return MasterWorkerCluster(group, group_ports, master, workers, **kwargs), master, workers


@pytest.mark.parametrize("tunnels", [True, False], ids=["tunnels", "direct"])
def test_custom_launchers_start_a_master_and_workers_that_talk_to_it(ssh_bed, tunnels):
    cluster, master, workers = _cluster(ssh_bed, tunnels=tunnels)
    with cluster:
        assert isinstance(cluster, RuntimeCluster)
        cluster.start(worker_count=4, master_port=None)
        assert cluster.master_port == master.port
        assert sorted(workers.ports_per_host) == sorted(HOSTS)
        assert sum(len(p) for p in workers.ports_per_host.values()) == 4
        for index, process in enumerate(workers.processes):
            wait_until(lambda p=process: "echo:" in p.output(), what=f"worker {index} echoed")
        outputs = sorted(p.output().strip() for p in workers.processes)
        hosts = [HOSTS[i % 3] for i in range(4)]
        assert outputs == sorted(f"echo:{h}-worker-{i}" for i, h in enumerate(hosts))
        assert master.process.status == "running"
    assert all(p.status == "stopped" for p in workers.processes) or workers.processes == []
    assert not matching(b"echo:") and not matching(b"stay up while the master")


def test_a_killed_worker_is_restarted_and_a_killed_master_too_with_its_workers(ssh_bed):
    cluster, master, workers = _cluster(ssh_bed)
    with cluster:
        cluster.start(worker_count=3)
        first = workers.processes[0]
        wait_until(lambda: "echo:" in first.output(), what="worker 0 echoed")
        marker = f"{HOSTS[0]}-worker-0".encode()
        (pid,) = matching(marker)
        kill_tree(pid, kill_root=True)
        wait_until(lambda: first.restart_count == 1 and first.status == "running", what="restart")
        wait_until(lambda: first.output().count("echo:") == 2, what="the new worker echoed")
        assert first.exit_codes == [-9]
        assert cluster.failure is None
        port = cluster.master_port
        (master_pid,) = matching(b"master up")
        kill_tree(master_pid, kill_root=True)
        # rest_for_one: the master again on its port, then every worker after it
        wait_until(lambda: master.process.restart_count == 1, what="the master restarted")
        assert cluster.master_port == port and cluster.failure is None
        for process in workers.processes:
            wait_until(lambda p=process: p.output().count("echo:") >= 2, what="workers again")
        assert master.process.exit_codes == [-9]


def test_a_master_lost_past_the_intensity_fails_the_cluster_loudly(ssh_bed):
    cluster, _, workers = _cluster(ssh_bed, max_restarts=0)
    with cluster:
        cluster.start(worker_count=3)
        for process in workers.processes:
            wait_until(lambda p=process: "echo:" in p.output(), what="workers echoed")
        (master_pid,) = matching(b"master up")
        kill_tree(master_pid, kill_root=True)
        with pytest.raises(MasterLostError) as caught:
            cluster.wait(timeout=30)
        assert "exit code -9" in str(caught.value) and "workers were stopped" in str(caught.value)
        wait_until(lambda: not matching(b"stay up while the master"), what="workers gone")
        assert all(p.status in ("stopped", "failed") for p in workers.processes)
        with pytest.raises(MasterLostError):
            cluster.start_workers(1)


def test_a_master_that_never_listens_is_a_master_start_error_with_its_output(ssh_bed):
    cluster, _, _ = _cluster(ssh_bed, master_cls=NeverUp)
    with cluster, pytest.raises(MasterStartError) as caught:
        cluster.start_master(timeout=1)
    assert "cannot bind: config missing" in caught.value.cause
    assert caught.value.port == 60000 or caught.value.port >= 31000
    wait_until(lambda: not matching(b"exec sleep 60"), what="the master killed")


def test_a_master_that_exits_at_once_is_a_master_start_error(ssh_bed):
    cluster, _, _ = _cluster(ssh_bed, master_cls=Crashing)
    with cluster, pytest.raises(MasterStartError, match="fatal: bad option") as caught:
        cluster.start_master(timeout=20)
    assert "exit code 2" in str(caught.value)


def test_a_busy_master_port_and_port_exhaustion_are_the_documented_errors(ssh_bed):
    ports = free_block(3, 33000)
    cluster, _, _ = _cluster(ssh_bed, ports=ports)
    busy = socket.socket()
    busy.bind(("127.0.0.1", ports[0]))
    busy.listen()
    try:
        with cluster:
            with pytest.raises(PortInUseError) as caught:
                cluster.start_master(master_port=ports[0], timeout=10)
            assert caught.value.port == ports[0]
            cluster.start_master(master_port=ports[1], timeout=10)  # the rest: 1 port
            with pytest.raises(NoPortsLeftError):
                cluster.start_workers(3)
    finally:
        busy.close()


SQUATTER = """
import socket, sys, time
squat = socket.socket()
squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past earlier TIME_WAITs
squat.bind((sys.argv[1], int(sys.argv[2])))
squat.listen()
open(sys.argv[3], "w").close()
time.sleep(120)
"""


class Collided(EchoMaster):
    """Another program (in a session of its own) takes the first port this master is
    given just before it binds; the master then fails and exits, or (``lingers``) its
    command stays up without listening."""

    def __init__(self, group, marker, lingers):
        super().__init__(group)
        self.marker, self.lingers = marker, lingers
        self.ports_given = []

    def get_launch_command(self, port, bind_address):
        self.ports_given.append(port)
        command = super().get_launch_command(port, bind_address)
        if len(self.ports_given) > 1:
            return command
        script = shlex.quote(SQUATTER)
        squatter = f"setsid python3 -c {script} {bind_address} {port} {self.marker} >/dev/null 2>&1"
        wait = f"for _ in $(seq 200); do [ -e {self.marker} ] && break; sleep 0.05; done"
        if self.lingers:
            command = command.removeprefix("exec ") + "; exec sleep 60"
        return f"{squatter} & {wait}; {command}"


@pytest.mark.parametrize("lingers", [False, True], ids=["master-exits", "master-lingers"])
def test_a_master_whose_port_is_taken_meanwhile_starts_at_the_next_port_of_the_list(
    ssh_bed, tmp_path, lingers
):
    group = RuntimeGroup(hosts=HOSTS[:1], connection_kwargs=ssh_bed.connection_kwargs)
    master = Collided(group, tmp_path / "squatting", lingers)
    cluster = MasterWorkerCluster(group, free_block(10, 34000), master, EchoWorkers(group))
    try:
        with cluster:
            cluster.start_master(timeout=3)
            assert master.marker.exists()  # the other program did take the port
            assert len(master.ports_given) == 2
            assert cluster.master_port == master.ports_given[1] != master.ports_given[0]
            assert master.process.status == "running"
            wait_until(lambda: "master up" in master.process.output(), what="the master is up")
    finally:
        for pid in matching(b"squat.listen()"):  # not the cluster's: ours to end
            kill_tree(pid, kill_root=True)


PATIENT_WORKER = """
import socket, sys, time
print("worker launched", time.time(), flush=True)
deadline = time.monotonic() + 30
while True:  # through a tunnel, a connection is taken and then reset while nothing listens
    try:
        conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
        conn.sendall(sys.argv[3].encode())
        reply = conn.recv(1024)
        if reply:
            break
        conn.close()
    except OSError:
        if time.monotonic() > deadline:
            raise
    time.sleep(0.05)
with conn:
    print(reply.decode(), flush=True)
    conn.recv(1)
"""

SLOW_MASTER = """
import sys, time
time.sleep(1.5)  # a slow start-up (dask's imports)
print("listening at", time.time(), flush=True)
"""


class PatientWorkers(WorkerLauncher):
    """Workers that retry until the master listens, as dask's do."""

    starts_with_master = True

    def get_launch_command(self, slot):
        script = shlex.quote(PATIENT_WORKER)
        marker = f"{slot.host}-patient-{slot.index}"
        return f"exec python3 -c {script} {slot.master_address} {slot.master_port} {marker}"


class SlowMaster(EchoMaster):
    def get_launch_command(self, port, bind_address):
        slow = shlex.quote(SLOW_MASTER)
        return f"python3 -c {slow}; {super().get_launch_command(port, bind_address)}"


def _launched_at(process) -> float:
    (line,) = [ln for ln in process.output().splitlines() if ln.startswith("worker launched")]
    return float(line.split()[-1])


@pytest.mark.parametrize("tunnels", [True, False], ids=["tunnels", "direct"])
def test_workers_that_wait_for_the_master_start_while_it_starts_up(ssh_bed, tunnels):
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
    master, workers = SlowMaster(group), PatientWorkers(group)
    cluster = MasterWorkerCluster(group, free_block(40, 35000), master, workers, tunnels=tunnels)
    with cluster:
        cluster.start(worker_count=3)
        for index, process in enumerate(workers.processes):
            wait_until(lambda p=process: "echo:" in p.output(), what=f"worker {index} echoed")
        (line,) = [ln for ln in master.process.output().splitlines() if "listening at" in ln]
        listening = float(line.split()[-1])
        assert all(_launched_at(p) < listening for p in workers.processes)
        assert all(p.restart_count == 0 for p in workers.processes)
    assert not matching(b"-patient-")


def test_workers_started_with_a_master_whose_port_was_taken_are_told_the_next_port(
    ssh_bed, tmp_path
):
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    master = Collided(group, tmp_path / "squatting", lingers=False)
    workers = PatientWorkers(group)
    cluster = MasterWorkerCluster(group, free_block(20, 36000), master, workers, tunnels=False)
    try:
        with cluster:
            cluster.start(worker_count=2)
            assert len(master.ports_given) == 2 and cluster.master_port == master.ports_given[1]
            assert len(workers.processes) == 2
            for process in workers.processes:
                wait_until(lambda p=process: "echo:" in p.output(), what="a worker echoed")
            assert len(matching(b"-patient-")) == 2  # those told of the taken port are gone
    finally:
        for pid in matching(b"squat.listen()"):
            kill_tree(pid, kill_root=True)
    assert not matching(b"-patient-")


def test_workers_started_with_a_master_that_fails_are_stopped_with_it(ssh_bed):
    group = RuntimeGroup(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
    workers = PatientWorkers(group)
    cluster = MasterWorkerCluster(group, free_block(20, 37000), NeverUp(group), workers)
    with cluster:
        with pytest.raises(MasterStartError, match="cannot bind"):
            cluster.start(worker_count=3)
        assert workers.processes == [] and cluster.master_port is None
        wait_until(lambda: not matching(b"-patient-"), what="the workers stopped")


def test_workers_started_with_a_master_refused_its_port_are_never_launched(ssh_bed):
    ports = free_block(10, 38000)
    group = RuntimeGroup(hosts=HOSTS[:2], connection_kwargs=ssh_bed.connection_kwargs)
    workers = PatientWorkers(group)
    cluster = MasterWorkerCluster(group, ports[1:], EchoMaster(group), workers)
    busy = socket.socket()
    busy.bind(("127.0.0.1", ports[0]))
    busy.listen()
    try:
        with cluster:
            # Refused before the master is launched (nothing wired): start() ends at once.
            with pytest.raises(PortInUseError):
                cluster.start(worker_count=2, master_port=ports[0])
            assert workers.processes == [] and cluster.master_port is None
            cluster.start(worker_count=2, master_port=ports[1])
            for process in workers.processes:
                wait_until(lambda p=process: "echo:" in p.output(), what="a worker echoed")
    finally:
        busy.close()
