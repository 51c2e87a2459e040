"""Tunnels under real faults: the host goes down and back, the service goes away, load."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import time

import pytest
from structlog.testing import capture_logs

from actorcluster import Runtime
from actorcluster.tunnels import port_is_free
from test_tunnels_support import EchoServer, echo_round_trip, free_ports, ssh_pids_forwarding
from waiting import wait_until

pytestmark = pytest.mark.slow

CARRIERS = [pytest.param(None, id="default"), pytest.param("paramiko", id="paramiko")]


def _works(port: int) -> bool:
    try:
        echo_round_trip(port, size=4096, timeout=2.0)
    except (AssertionError, OSError):
        return False
    return True


def _events(logs: list[dict[str, object]], event: str) -> set[object]:
    return {entry.get("key") for entry in logs if entry["event"] == event}


@pytest.mark.parametrize("carrier", CARRIERS)
def test_tunnels_work_again_soon_after_the_host_comes_back(make_ssh_bed, carrier):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    service_here, service_there, local, remote = free_ports(4)
    with (
        Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt,
        EchoServer(service_here),
        EchoServer(service_there),
    ):
        from_key = rt.expose_port_from_runtime(service_there, local, carrier=carrier)
        to_key = rt.expose_port_to_runtime(service_here, remote, carrier=carrier)
        echo_round_trip(local)
        echo_round_trip(remote)
        with capture_logs() as logs:
            host.stop()
            wait_until(lambda: {from_key, to_key} <= _events(logs, "tunnel.down"), 15, "down")
            assert not _works(local)
            host.start()
            back = time.monotonic()
            wait_until(lambda: _works(local) and _works(remote), 15, "tunnels back")
            assert time.monotonic() - back < 10
        assert {from_key, to_key} <= _events(logs, "tunnel.up")
        down = next(e for e in logs if e["event"] == "tunnel.down" and e["key"] == to_key)
        assert down["host"] == "host-1"
        assert (down["direction"], down["local_port"], down["runtime_port"]) == (
            "-R",
            service_here,
            remote,
        )
        assert rt.get_process(from_key).is_alive()
        echo_round_trip(local, size=2**20)
        echo_round_trip(remote, size=2**20)


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("direction", ["from", "to"])
def test_a_vanished_service_closes_the_clients_and_the_tunnel_serves_it_again(
    runtime, direction, carrier
):
    service, listen = free_ports(2)
    echo = EchoServer(service).start()
    expose = (
        runtime.expose_port_from_runtime if direction == "from" else runtime.expose_port_to_runtime
    )
    key = expose(service, listen, carrier=carrier)
    try:
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as client:
            client.sendall(b"ping")
            assert client.recv(4) == b"ping"
            echo.stop()
            assert _closed_by_peer(client)
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as client:
            assert _closed_by_peer(client)  # no service: refused through the tunnel
        echo.start()
        echo_round_trip(listen)
        assert runtime.get_process(key).is_alive()
    finally:
        echo.stop()
        runtime.stop_process(key)


def test_fifty_tunnels_carry_data_at_once_and_cleanup_frees_every_port(ssh_bed):
    service_here, service_there, *listen = free_ports(52)
    rt = Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs)
    with EchoServer(service_here), EchoServer(service_there):
        try:
            keys = [rt.expose_port_from_runtime(service_there, port) for port in listen[:25]]
            keys += [rt.expose_port_to_runtime(service_here, port) for port in listen[25:]]
            assert len(rt.get_processes(only_alive=True)) == 50
            with concurrent.futures.ThreadPoolExecutor(50) as pool:
                list(pool.map(lambda port: echo_round_trip(port, size=2**19), listen, timeout=60))
        finally:
            rt.cleanup()
    assert rt.alive_process_count == 0
    assert all(port_is_free("127.0.0.1", port) for port in listen)
    for port in listen:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            pytest.fail(f"port {port} still accepts after cleanup")


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_runtime_port_taken_while_the_host_was_down_is_retried_until_free(make_ssh_bed, carrier):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    service, remote = free_ports(2)
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt, EchoServer(service):
        key = rt.expose_port_to_runtime(service, remote, carrier=carrier)
        with capture_logs() as logs:
            host.stop()
            squatter = EchoServer(remote).start()  # the host's loopback is ours
            host.start()
            wait_until(lambda: key in _events(logs, "tunnel.open_failed"), 15, "a failed open")
            squatter.stop()
            wait_until(lambda: _works(remote) and key in _events(logs, "tunnel.up"), 15, "up")
        assert squatter.connections == 0


def test_a_killed_ssh_of_a_default_tunnel_is_restarted_by_its_supervisor(runtime):
    service, listen = free_ports(2)
    with EchoServer(service):
        key = runtime.expose_port_from_runtime(service, listen)
        try:
            (pid,) = ssh_pids_forwarding(listen)
            with capture_logs() as logs:
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: key in _events(logs, "tunnel.down"), 10, "down")
                wait_until(lambda: _works(listen), 15, "the tunnel back")
            assert ssh_pids_forwarding(listen) not in ([], [pid])
            assert key in _events(logs, "tunnel.up")
        finally:
            runtime.stop_process(key)
    wait_until(lambda: not ssh_pids_forwarding(listen), 5, "ssh gone")
