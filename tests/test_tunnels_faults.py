"""Tunnels under real faults: the host goes down and back, the service goes away, load.

What is on the runtime's side (a service exposed from it, a client of a port exposed to
it) runs ``on=`` the host: on its own loopback when the bed is isolated
(``ACTORCLUSTER_TEST_ISOLATED=1``), as on a real host.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import pytest
from structlog.testing import capture_logs

from actorcluster import Runtime
from test_tunnels_support import (
    EchoServer,
    HeldConnection,
    echo_round_trip,
    echo_round_trips,
    free_ports,
    ports_free,
    ports_listening,
    read_all,
    ssh_pids_forwarding,
)
from waiting import wait_until

pytestmark = pytest.mark.slow

CARRIERS = [pytest.param(None, id="default"), pytest.param("paramiko", id="paramiko")]


def _works(port: int, on=None) -> bool:
    try:
        echo_round_trip(port, size=4096, timeout=2.0, on=on)
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
        EchoServer(service_there, on=host),
    ):
        from_key = rt.expose_port_from_runtime(service_there, local, carrier=carrier)
        to_key = rt.expose_port_to_runtime(service_here, remote, carrier=carrier)
        echo_round_trip(local)
        echo_round_trip(remote, on=host)
        with capture_logs() as logs:
            host.stop()
            wait_until(lambda: {from_key, to_key} <= _events(logs, "tunnel.down"), 15, "down")
            assert not _works(local)
            host.start()
            back = time.monotonic()
            wait_until(lambda: _works(local) and _works(remote, on=host), 15, "tunnels back")
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
        echo_round_trip(remote, size=2**20, on=host)


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.fixture(scope="module")
def host(ssh_bed):
    """The runtime's host (where its side of a tunnel is)."""
    return ssh_bed.hosts[1]


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("direction", ["from", "to"])
def test_a_vanished_service_closes_the_clients_and_the_tunnel_serves_it_again(
    runtime, host, direction, carrier
):
    service, listen = free_ports(2)
    service_on, client_on = (host, None) if direction == "from" else (None, host)
    echo = EchoServer(service, on=service_on).start()
    expose = (
        runtime.expose_port_from_runtime if direction == "from" else runtime.expose_port_to_runtime
    )
    key = expose(service, listen, carrier=carrier)
    try:
        client = HeldConnection(listen, on=client_on)  # a ping echoed through the tunnel
        echo.stop()
        assert client.closed_by_peer(timeout=5)
        assert read_all(listen, on=client_on) == b""  # no service: refused through the tunnel
        echo.start()
        echo_round_trip(listen, on=client_on)
        assert runtime.get_process(key).is_alive()
    finally:
        echo.stop()
        runtime.stop_process(key)


def test_fifty_tunnels_carry_data_at_once_and_cleanup_frees_every_port(ssh_bed):
    host = ssh_bed.hosts[2]
    service_here, service_there, *listen = free_ports(52)
    here, there = listen[:25], listen[25:]  # from-tunnels listen here, to-tunnels there
    rt = Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs)
    with EchoServer(service_here), EchoServer(service_there, on=host):
        try:
            for port in here:
                rt.expose_port_from_runtime(service_there, port)
            for port in there:
                rt.expose_port_to_runtime(service_here, port)
            assert len(rt.get_processes(only_alive=True)) == 50
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                both = [
                    pool.submit(echo_round_trips, here, size=2**19),
                    pool.submit(echo_round_trips, there, size=2**19, on=host),
                ]
                for done in both:
                    done.result(timeout=90)
        finally:
            rt.cleanup()
    assert rt.alive_process_count == 0
    assert all(ports_free(here)), "a port here is still bound after cleanup"
    assert all(ports_free(there, on=host)), "a port on the host is still bound after cleanup"
    assert not any(ports_listening(here) + ports_listening(there, on=host)), "one still accepts"


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_runtime_port_taken_while_the_host_was_down_is_retried_until_free(make_ssh_bed, carrier):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    service, remote = free_ports(2)
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt, EchoServer(service):
        key = rt.expose_port_to_runtime(service, remote, carrier=carrier)
        with capture_logs() as logs:
            host.stop()
            squatter = EchoServer(remote, on=host).start()  # on the host's own loopback
            host.start()
            wait_until(lambda: key in _events(logs, "tunnel.open_failed"), 15, "a failed open")
            squatter.stop()
            wait_until(
                lambda: _works(remote, on=host) and key in _events(logs, "tunnel.up"), 15, "up"
            )
        assert squatter.connections == 0


def test_a_killed_ssh_of_a_default_tunnel_is_restarted_by_its_supervisor(runtime, host):
    service, listen = free_ports(2)
    with EchoServer(service, on=host):
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
