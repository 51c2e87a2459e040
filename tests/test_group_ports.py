"""Ports across a group of five real hosts: free-port probes in one request per host,
the law of ``get_free_port``, and the hub-and-spoke exposures, end to end.

On the loopback bed the hosts share this machine's kernel, so a port taken on one
host's address is taken for every host's probe (which binds every address): the hosts'
busy sets below are real listeners on each host's own address, and the law is checked
against their union, which is what "free on every host" means. On an isolated bed each
host's listeners are its own (held by a process in its namespace); the union is still
what "free on every host" means."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster import NoPortsLeftError, PortInUseError, RuntimeGroup, RuntimeTask, UsageError
from actorcluster.groups.ports import first_free_port
from port_blocks import free_block
from sshbed import SshBed
from waiting import wait_until

if TYPE_CHECKING:
    from sshbed import SshHost

HOSTS = [f"host-{n}" for n in range(1, 6)]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with SshBed(tmp_path_factory.mktemp("ports_bed"), count=5) as five:
        yield five


@pytest.fixture(scope="module")
def group(bed):
    with RuntimeGroup(hosts=HOSTS, connection_kwargs=bed.connection_kwargs) as five:
        yield five


def _free_ports(count: int, start: int = 21000) -> list[int]:
    """``count`` consecutive ports below the ephemeral range that nothing holds now."""
    return free_block(count, start, stop=32000)


_HOLD = (
    "import socket,sys\nheld=[socket.socket() for _ in sys.argv[2:]]\n"
    "for s,p in zip(held,sys.argv[2:]): s.bind((sys.argv[1],int(p))); s.listen()\n"
    "print('ready',flush=True); sys.stdin.read()"
)


@contextlib.contextmanager
def _listening(host: SshHost, ports: list[int]):
    """Listeners on ``ports`` of ``host``'s own address, while the block runs."""
    if host.net is not None and ports:  # a separate machine: held by a process there
        argv = [sys.executable, "-c", _HOLD, host.sshd_address, *map(str, ports)]
        holder = host.run(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert holder.stdout is not None and holder.stdin is not None
        try:
            assert holder.stdout.readline() == b"ready\n", f"ports {ports} not held"
            yield
        finally:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        return
    sockets = []
    try:
        for port in ports:
            sock = socket.socket()
            sock.bind((host.sshd_address, port))
            sock.listen()
            sockets.append(sock)
        yield
    finally:
        for sock in sockets:
            sock.close()


# --- the law, on its own --------------------------------------------------------------


@given(
    ports=st.lists(st.integers(1, 40), unique=True, max_size=12),
    busy=st.lists(st.sets(st.integers(1, 40), max_size=30), min_size=1, max_size=6),
)
def test_the_first_port_free_on_every_host_or_no_ports_left(ports, busy):
    verdicts = [[port not in taken for port in ports] for taken in busy]
    expected = next((p for p in ports if all(p not in taken for taken in busy)), None)
    if expected is None:
        with pytest.raises(NoPortsLeftError):
            first_free_port(ports, verdicts)
    else:
        assert first_free_port(ports, verdicts) == expected


# --- the law, on real hosts -----------------------------------------------------------


@pytest.fixture(scope="module")
def candidates():
    return _free_ports(8)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_get_free_port_on_real_hosts_is_the_first_port_no_host_holds(group, bed, candidates, data):
    order = data.draw(st.permutations(candidates))
    busy = {
        host: data.draw(st.sets(st.sampled_from(candidates), max_size=3), label=host.name)
        for host in bed.hosts
    }
    taken = set().union(*busy.values())
    with contextlib.ExitStack() as stack:
        for host, ports in busy.items():
            stack.enter_context(_listening(host, sorted(ports)))
        expected = next((port for port in order if port not in taken), None)
        if expected is None:
            with pytest.raises(NoPortsLeftError):
                group.get_free_port(order)
        else:
            assert group.get_free_port(order) == expected
        assert [group.has_free_port(p) for p in order] == [p not in taken for p in order]


def test_has_free_port_and_get_free_port_check_their_arguments(group, candidates):
    with pytest.raises(NoPortsLeftError):
        group.get_free_port([])
    with pytest.raises(UsageError, match="ports"):
        group.get_free_port(candidates[0])
    with pytest.raises(UsageError, match=r"1\.\.65535"):
        group.has_free_port(70000)
    assert group.get_free_port(candidates, enforce_check_on_localhost=True) == candidates[0]
    assert group.has_free_port(candidates[0], exclude_hosts=["host-1", "host-2"])


# --- exposures --------------------------------------------------------------------------


class EchoServer:
    """A one-line server here: answers every connection with a greeting."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(20)

    def answer_one(self, text: bytes) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(text)

    def close(self) -> None:
        self.sock.close()


_CLIENT = textwrap.dedent(
    """
    python3 -c 'import socket
    s = socket.create_connection(("127.0.0.1", {port}), 10)
    print(s.recv(100).decode())'
    """
).strip()


def test_a_local_port_is_exposed_to_the_runtimes_at_the_first_free_port(group, bed, candidates):
    import threading

    local = candidates[0]
    server = EchoServer(local)
    try:
        with _listening(bed.hosts[1], [candidates[1]]):  # taken on host-2
            port = group.expose_port_to_runtimes(
                local,
                runtime_port=candidates[1:4],
                exclude_hosts=["host-1", "host-3", "host-4", "host-5"],
            )
        assert port == candidates[2]
        keys = group.get_runtime("host-2").get_processes(only_alive=True)
        assert any(f"::{port}::{local}" in key for key in keys)
        answering = threading.Thread(target=server.answer_one, args=(b"from the hub",))
        answering.start()
        task = RuntimeTask("client").run_command(_CLIENT.format(port=port))
        group.execute_task(task, host="host-2", execute_async=False)
        answering.join(10)
        assert task.execution_log == ["from the hub\n"]
        with pytest.raises(PortInUseError) as caught:  # the tunnel holds it now
            group.expose_port_to_runtimes(local, port, exclude_hosts=HOSTS[:1] + HOSTS[2:])
        assert caught.value.port == port
    finally:
        server.close()
        for runtime in group.runtimes:
            for key in runtime.get_processes(only_alive=True):
                if group.get_runtime(runtime.host).is_port_exposure_process(key):
                    runtime.stop_process(key)


def test_a_service_on_one_runtime_is_reached_from_another_through_the_hub(ssh_bed):
    service, group_ports = _free_ports(1, 24000)[0], _free_ports(3, 25000)
    server = (
        "python3 -c 'import socket; s = socket.socket(); "
        f's.bind(("127.0.0.1", {service})); s.listen(); print("ready", flush=True); '
        'c, _ = s.accept(); c.sendall(b"served by host-1"); c.close()\''
    )
    with RuntimeGroup(
        hosts=["host-1", "host-2"], connection_kwargs=ssh_bed.connection_kwargs
    ) as pair:
        serving = pair.execute_task(RuntimeTask("serve").run_command(server), host="host-1")
        wait_until(lambda: serving.execution_log == ["ready\n"], what="the service listening")
        with _listening(ssh_bed.hosts[1], group_ports[:1]):  # taken on host-2
            port = pair.expose_port_from_runtime_to_group("host-1", service, group_ports)
        assert port == group_ports[1]
        client = RuntimeTask("client").run_command(_CLIENT.format(port=port))
        pair.execute_task(client, host="host-2", execute_async=False)
        assert client.execution_log == ["served by host-1\n"]
        serving.future.get(timeout=10)
        with pytest.raises(UsageError, match="host-9"):
            pair.expose_port_from_runtime_to_group("host-9", service)
