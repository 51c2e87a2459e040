"""Port exposure over real SSH: both directions, process keys, stopping, bad input.

Behaviour that both carriers must share runs with the default carrier (``ssh -N`` on
this machine) and with the paramiko relay. What is on the runtime's side (a service
exposed from it, a client of a port exposed to it) runs ``on=`` the host: on its own
loopback when the bed is isolated (``ACTORCLUSTER_TEST_ISOLATED=1``), as on a real host.
"""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from actorcluster import PortInUseError, Runtime, UsageError
from actorcluster.tunnels import port_is_free
from test_tunnels_support import (
    EchoServer,
    HeldConnection,
    echo_round_trip,
    free_ports,
    listening,
    port_free,
)
from waiting import wait_until


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.fixture(scope="module")
def host(ssh_bed):
    """The runtime's host (where its side of a tunnel is)."""
    return ssh_bed.hosts[0]


@pytest.fixture
def ports():
    return free_ports(4)


CARRIERS = [pytest.param(None, id="default"), pytest.param("paramiko", id="paramiko")]


def _tunnel_children(runtime):
    supervisor = runtime._handle.context.tunnel_supervisor()
    return [info.id for info in supervisor.proxy().which_children().get(timeout=5)]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_local_forward_carries_data_both_ways(runtime, host, ports, carrier):
    service, local = ports[:2]
    with EchoServer(service, on=host):
        key = runtime.expose_port_from_runtime(service, local, carrier=carrier)
        try:
            echo_round_trip(local, size=4 * 2**20)
            echo_round_trip(local)
        finally:
            runtime.stop_process(key)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_remote_forward_carries_data_both_ways(runtime, host, ports, carrier):
    service, remote = ports[:2]
    with EchoServer(service):
        key = runtime.expose_port_to_runtime(service, remote, carrier=carrier)
        try:
            echo_round_trip(remote, size=4 * 2**20, on=host)
            echo_round_trip(remote, on=host)
        finally:
            runtime.stop_process(key)


def test_process_keys_keep_lazyclusters_format_and_are_listed(runtime, ports):
    a, b, c, d = ports
    from_key = runtime.expose_port_from_runtime(a, b)
    to_key = runtime.expose_port_to_runtime(c, d)
    try:
        assert from_key == f"host-1::-L::{b}::{a}"
        assert to_key == f"host-1::-R::{d}::{c}"
        assert Runtime.is_port_exposure_process(from_key)
        assert Runtime.is_port_exposure_process(to_key)
        assert not Runtime.is_runtime_task_process(to_key)
        alive = runtime.get_processes(only_alive=True)
        assert {from_key, to_key} <= alive.keys()
        assert runtime.get_process(to_key).is_alive()
        assert {from_key, to_key} <= set(_tunnel_children(runtime))
    finally:
        runtime.stop_process(from_key)
        runtime.stop_process(to_key)
    assert from_key not in runtime.get_processes(only_alive=True)
    assert not runtime.get_process(to_key).is_alive()
    assert not {from_key, to_key} & set(_tunnel_children(runtime))


def test_the_listening_port_defaults_to_the_other_port(runtime, host, ports):
    a, b = ports[:2]
    from_key = runtime.expose_port_from_runtime(a)
    to_key = runtime.expose_port_to_runtime(b)
    try:
        assert from_key == f"host-1::-L::{a}::{a}"
        assert to_key == f"host-1::-R::{b}::{b}"
        assert listening(a)
        assert listening(b, on=host)
    finally:
        runtime.stop_process(from_key)
        runtime.stop_process(to_key)


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("direction", ["from", "to"])
def test_stop_process_closes_the_listener_and_its_connections_at_once(
    runtime, host, ports, direction, carrier
):
    service, listen = ports[:2]
    service_on, client_on = (host, None) if direction == "from" else (None, host)
    with EchoServer(service, on=service_on):
        if direction == "from":
            key = runtime.expose_port_from_runtime(service, listen, carrier=carrier)
        else:
            key = runtime.expose_port_to_runtime(service, listen, carrier=carrier)
        client = HeldConnection(listen, on=client_on)  # a ping echoed through the tunnel
        runtime.stop_process(key)
        assert client.closed_by_peer()  # closed by the stop, not by a timeout
        assert port_free(listen, on=client_on)
        assert not runtime.get_process(key).is_alive()
        accepting = [t for t in threading.enumerate() if t.name.endswith(f"{listen}-accept")]
        for thread in accepting:
            thread.join(5)
            assert not thread.is_alive()


@pytest.mark.parametrize("bad", [0, -1, 65536, 70000, "80a", "", 80.5, True, None])
def test_bad_ports_raise_usage_errors(runtime, bad):
    with pytest.raises(UsageError, match=r"1\.\.65535"):
        runtime.expose_port_from_runtime(bad)
    with pytest.raises(UsageError, match=r"1\.\.65535"):
        runtime.expose_port_to_runtime(bad)
    if bad is not None:
        with pytest.raises(UsageError, match="local_port"):
            runtime.expose_port_from_runtime(8080, bad)
        with pytest.raises(UsageError, match="runtime_port"):
            runtime.expose_port_to_runtime(8080, bad)


def test_a_bad_carrier_or_bind_address_raises_a_usage_error(runtime, ports):
    with pytest.raises(UsageError, match="carrier"):
        runtime.expose_port_from_runtime(ports[0], ports[1], carrier="socat")
    with pytest.raises(UsageError, match="bind_address"):
        runtime.expose_port_to_runtime(ports[0], ports[1], bind_address="")


def test_a_local_port_in_use_raises_before_anything_is_opened(runtime, ports):
    service, taken = ports[:2]
    with EchoServer(taken), pytest.raises(PortInUseError) as caught:
        runtime.expose_port_from_runtime(service, taken)
    assert caught.value.port == taken
    assert caught.value.args[1] == "local"
    assert f"host-1::-L::{taken}::{service}" not in runtime.get_processes()
    assert f"host-1::-L::{taken}::{service}" not in _tunnel_children(runtime)


def test_a_runtime_port_in_use_raises_naming_the_host(runtime, host, ports):
    service, taken = ports[:2]
    with EchoServer(taken, on=host), pytest.raises(PortInUseError) as caught:
        runtime.expose_port_to_runtime(service, taken)
    assert caught.value.port == taken
    assert caught.value.args[1] == "host-1"
    assert f"host-1::-R::{taken}::{service}" not in runtime.get_processes()


def test_exposing_the_same_ports_twice_raises_port_in_use(runtime, ports):
    key = runtime.expose_port_to_runtime(ports[0], ports[1])
    try:
        with pytest.raises(PortInUseError):
            runtime.expose_port_to_runtime(ports[0], ports[1])
    finally:
        runtime.stop_process(key)


def test_tunnels_log_up_and_down(runtime, ports):
    with capture_logs() as logs:
        key = runtime.expose_port_from_runtime(ports[0], ports[1])
        runtime.stop_process(key)
    events = [e for e in logs if e.get("key") == key and e["event"] in ("tunnel.up", "tunnel.down")]
    assert [entry["event"] for entry in events] == ["tunnel.up", "tunnel.down"]
    assert events[0]["direction"] == "-L"
    assert events[0]["local_port"] == ports[1]
    assert events[0]["runtime_port"] == ports[0]
    assert events[1]["wanted"] is False


@pytest.mark.parametrize("direction", ["from", "to"])
def test_the_openssh_carrier_carries_data_both_ways(runtime, host, ports, direction):
    service, listen = ports[:2]
    service_on, client_on = (host, None) if direction == "from" else (None, host)
    with EchoServer(service, on=service_on):
        if direction == "from":
            key = runtime.expose_port_from_runtime(service, listen, carrier="openssh")
        else:
            key = runtime.expose_port_to_runtime(service, listen, carrier="openssh")
        try:
            echo_round_trip(listen, size=2**20, on=client_on)
        finally:
            runtime.stop_process(key)
        # ssh exits at once; the host's sshd closes its listener when it notices.
        wait_until(lambda: port_free(listen, on=client_on), 5, "the port freed")


def test_the_localhost_runtime_exposes_ports_both_ways():
    a, b, c, d = free_ports(4)
    with Runtime("localhost") as rt, EchoServer(a), EchoServer(c):
        from_key = rt.expose_port_from_runtime(a, b)
        to_key = rt.expose_port_to_runtime(c, d)
        assert from_key == f"localhost::-L::{b}::{a}"
        assert to_key == f"localhost::-R::{d}::{c}"
        echo_round_trip(b)
        echo_round_trip(d)
        with pytest.raises(PortInUseError):
            rt.expose_port_to_runtime(a, b)
        with pytest.raises(UsageError, match="carrier"):
            rt.expose_port_from_runtime(a, c, carrier="openssh")
    assert port_is_free("127.0.0.1", b)
    assert port_is_free("127.0.0.1", d)
