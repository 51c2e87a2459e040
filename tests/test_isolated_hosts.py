"""The paths a real fleet takes, on hosts that are separate machines on the network
(``SshBed(isolated=True)``: each host its own namespace, loopback and address).

On the loopback bed every host shares this machine's network stack, and the cluster
code rightly skips the tunnels for such hosts (``cluster/hosts.py: shared_loopback``).
Here nothing is shared: a Dask cluster's workers reach the scheduler here, and each
other, only through tunnels; a service on a host's own 127.0.0.1 is that host's alone;
and a partition is a pulled cable (silence), not a killed process.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest

from actorcluster import HostUnreachableError, Runtime, RuntimeGroup, RuntimeTask
from port_blocks import free_block
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sshbed import SshBed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FAST = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0, "session_grace": 15.0}
ECHO = textwrap.dedent(
    """
    import socket, sys, threading
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1])))
    server.listen()
    print("ready", flush=True)
    def serve(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(sys.argv[2].encode() + data)
    while True:
        threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
    """
)


ECHO_MASTER = textwrap.dedent(
    """
    import socket, sys, threading
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen()
    def serve(conn):
        with conn:
            while data := conn.recv(1024):
                conn.sendall(b"echo:" + data)
    while True:
        threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
    """
)
ECHO_WORKER = textwrap.dedent(
    """
    import socket, sys
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), 10) as conn:
        conn.sendall(sys.argv[3].encode())
        print(conn.recv(1024).decode(), flush=True)
        conn.recv(1)  # stay up while the master does
    """
)


def serve_on_host(bed: SshBed, index: int, port: int, tag: str) -> None:
    """An echo service on host ``index``'s own 127.0.0.1 (``tag`` before each reply)."""
    proc = bed.hosts[index].run(
        [sys.executable, "-c", ECHO, str(port), tag], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"


def ask(port: int, message: bytes, address: str = "127.0.0.1") -> bytes:
    """Connect, send ``message``, return the reply."""
    with socket.create_connection((address, port), 10) as sock:
        sock.settimeout(10)
        sock.sendall(message)
        return sock.recv(1000)


def _ask_on_host(port: int) -> str:  # travels by value: runs on the host
    import socket

    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(b"from the host")
        return sock.recv(1000).decode()


_ask_on_host.__module__ = "__main__"


def _square(x: int) -> int:  # travels by value: the workers cannot import this module
    return x * x


_square.__module__ = "__main__"


def test_tunnels_both_ways_reach_services_on_the_hosts_own_loopback(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1)
    there, here, reverse, local = free_block(4, 26000, stop=32000)
    serve_on_host(bed, 0, there, "host:")
    with pytest.raises(ConnectionRefusedError):  # the host's loopback is not ours
        ask(there, b"x")
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        rt.expose_port_from_runtime(there, here)  # -L: a port here reaches the host's
        assert ask(here, b"ping") == b"host:ping"
        server = socket.create_server(("127.0.0.1", local))
        try:
            rt.expose_port_to_runtime(local, reverse)  # -R: a port there reaches ours
            reply = rt.execute_function(_ask_on_host, execute_async=True, port=reverse)
            conn, _ = server.accept()
            with conn:
                assert conn.recv(100) == b"from the host"
                conn.sendall(b"answered here")
            assert reply.future is not None
            reply.future.get(timeout=30)
            assert next(iter(reply.function_returns)) == "answered here"
        finally:
            server.close()


def test_a_service_on_one_host_is_reached_from_another_through_the_hub(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(2)
    service, *group_ports = free_block(3, 27000, stop=32000)
    serve_on_host(bed, 0, service, "host-1 says ")
    with RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=bed.connection_kwargs) as pair:
        port = pair.expose_port_from_runtime_to_group("host-1", service, group_ports)
        runs = pair.execute_function(_ask_on_host, host="host-2", port=port)
        task = runs[0] if isinstance(runs, list) else runs
        assert task.future is not None
        task.future.get(timeout=30)
        assert next(iter(task.function_returns)) == "host-1 says from the host"


def test_dask_on_three_separate_hosts_computes_through_the_tunnels(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    pytest.importorskip("distributed")
    import dask.array as da

    from actorcluster.cluster.dask_cluster import DaskCluster
    from actorcluster.cluster.hosts import shared_loopback

    bed = make_isolated_bed(3)
    hosts = [host.name for host in bed.hosts]
    with RuntimeGroup(hosts=hosts, connection_kwargs=bed.connection_kwargs) as group:
        runtimes = {name: group.get_runtime(name) for name in hosts}
        assert shared_loopback(runtimes) == dict.fromkeys(hosts, False)  # the tunnel path
        with DaskCluster(group, worker_options={"nthreads": 1}) as cluster:
            cluster.start(worker_count=3)
            with cluster.get_client(timeout=30) as client:
                assert client.submit(_square, 12).result(timeout=60) == 144
                # chunks on every worker, summed across them: worker-to-worker traffic
                total = da.ones((600, 600), chunks=(100, 100)).sum()
                assert client.compute(total).result(timeout=90) == 360_000
                workers = client.scheduler_info()["workers"]
                assert len(workers) == 3


def test_a_partition_during_a_running_task_is_noticed_and_healed_without_loss(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1)
    host = bed.hosts[0]
    with Runtime("host-1", connection_kwargs={**bed.connection_kwargs, **FAST}) as rt:
        task = RuntimeTask("long").run_command("echo before; sleep 6; echo done")
        future = rt.execute_task(task)
        assert future is not None
        wait_until(lambda: task.execution_log[:1] == ["before\n"], what="the task started")
        began = time.monotonic()
        host.partition()
        # noticed by the heartbeat (silence: nothing resets the connection)
        wait_until(lambda: not rt.is_connected, 15, "the partition was noticed")
        assert time.monotonic() - began < FAST["heartbeat_timeout"] + 5
        time.sleep(2)  # the partition lasts a while: that is the fault
        host.heal()
        assert future.get(timeout=60).execution_log == ["before\ndone\n"]
        assert rt._handle.context.reattaches >= 1  # the same session, re-attached
        assert rt.echo("after").strip() == "after"


def test_a_host_partitioned_for_good_fails_the_running_task_typed_in_bounded_time(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1)
    kwargs = {**bed.connection_kwargs, **FAST, "session_grace": 3.0}
    with Runtime("host-1", connection_kwargs=kwargs) as rt:
        future = rt.execute_task(RuntimeTask("long").run_command("sleep 120"))
        assert future is not None
        rt.echo("in flight")
        began = time.monotonic()
        bed.hosts[0].partition()
        with pytest.raises(HostUnreachableError, match="host-1"):
            future.get(timeout=60)
        assert time.monotonic() - began < 40


def test_a_partition_during_a_large_upload_fails_it_typed_and_leaves_no_partial_file(
    make_isolated_bed: Callable[..., SshBed], tmp_path: Path
) -> None:
    bed = make_isolated_bed(1)
    source = tmp_path / "big.bin"
    with source.open("wb") as file:
        file.truncate(200 * 1024 * 1024)
    dest = tmp_path / "dest"
    dest.mkdir()
    kwargs = {**bed.connection_kwargs, **FAST, "heartbeat_timeout": 3, "session_grace": 3}
    with Runtime("host-1", connection_kwargs=kwargs) as rt:
        task = rt.send_file(str(source), str(dest / "big.bin"), execute_async=True)
        wait_until(lambda: _partials(dest), what="the upload began")
        bed.hosts[0].partition()
        began = time.monotonic()
        assert task.future is not None
        with pytest.raises(HostUnreachableError, match="host-1"):
            task.future.get(timeout=30)
        assert time.monotonic() - began < 25
        bed.hosts[0].heal()
        wait_until(lambda: not _partials(dest), timeout=40, what="the partial file removed")
        assert os.listdir(dest) == []


def _partials(root: Path) -> list[str]:
    from actorcluster.remote.agent.landing import is_partial_name

    return [name for name in os.listdir(root) if is_partial_name(name)]


def test_a_lazycluster_style_launcher_pair_works_across_separate_hosts(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    """A custom master on one host, workers on all three talking to it through the hub
    (what ``MasterWorkerCluster`` wires with ``tunnels=True``)."""
    from actorcluster.cluster import MasterLauncher, MasterWorkerCluster, WorkerLauncher

    class EchoMaster(MasterLauncher):
        def get_launch_command(self, port: int, bind_address: str) -> str:
            argv = [sys.executable, "-c", ECHO_MASTER, bind_address, str(port)]
            return "exec " + shlex.join(argv)

    class EchoWorkers(WorkerLauncher):
        def get_launch_command(self, slot: Any) -> str:
            marker = f"{slot.host}-worker-{slot.index}"
            argv = [sys.executable, "-c", ECHO_WORKER, slot.master_address]
            return "exec " + shlex.join([*argv, str(slot.master_port), marker])

    bed = make_isolated_bed(3)
    hosts = [host.name for host in bed.hosts]
    group = RuntimeGroup(hosts=hosts, connection_kwargs=bed.connection_kwargs)
    master, workers = EchoMaster(group), EchoWorkers(group)
    cluster = MasterWorkerCluster(group, free_block(40, 29000, stop=32000), master, workers)
    with cluster:
        cluster.start(worker_count=3, master_port=None)
        for index, process in enumerate(workers.processes):
            wait_until(lambda p=process: "echo:" in p.output(), 60, f"worker {index} echoed")
        outputs = sorted(process.output().strip() for process in workers.processes)
        assert outputs == sorted(f"echo:{host}-worker-{i}" for i, host in enumerate(hosts))


def test_a_partition_during_a_tunnel_transfer_ends_it_in_bounded_time_and_heal_serves_again(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    """A connection through a tunnel does not hang on a partition: it ends within the
    heartbeat's bound (the user's read returns, at the end of the stream or with an
    error); once the link is back the tunnel takes new connections again."""
    bed = make_isolated_bed(1)
    there, here = free_block(2, 30000, stop=32000)
    serve_on_host(bed, 0, there, "")
    kwargs = {**bed.connection_kwargs, **FAST, "heartbeat_timeout": 3}
    with Runtime("host-1", connection_kwargs=kwargs) as rt:
        rt.expose_port_from_runtime(there, here)
        with socket.create_connection(("127.0.0.1", here), 10) as sock:
            sock.sendall(b"x" * 1000)
            received = b""
            while len(received) < 1000:
                received += sock.recv(1000)
            bed.hosts[0].partition()
            began = time.monotonic()
            sock.settimeout(30)
            sock.sendall(b"during the partition")
            with contextlib.suppress(ConnectionError):  # it breaks, or ...
                assert sock.recv(100) == b""  # ... it ends: either way the read returns
            assert time.monotonic() - began < 20
        bed.hosts[0].heal()
        wait_until(lambda: _answers(here), 60, "the tunnel serving again")


def _answers(port: int) -> bool:
    try:
        return ask(port, b"again") == b"again"
    except OSError:
        return False
