"""Round-trip budgets, counted (not timed) through the latency relay (``rtt_ms``).

Against a host 20-80 ms away, the round trips an operation waits for are what a user
feels; on loopback they are invisible. The relay counts them causally (each chunk one
deeper than the last chunk the other way delivered before it was read; see
``latency_relay.py``), so these budgets hold or fail the same on any machine, loaded
or not. Heartbeats are slowed down so that none falls into a measurement.
"""

from __future__ import annotations

import socket
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from actorcluster import Runtime, RuntimeTask
from client_modules import client_path, write_tree
from port_blocks import free_block
from test_tunnels_support import EchoServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from latency_relay import LatencyRelay
    from sshbed import SshBed

pytestmark = pytest.mark.timeout(180)

RTT_MS = 5.0
QUIET = {"heartbeat_interval": 600.0, "heartbeat_timeout": 1200.0}
MODULES = 20


@pytest.fixture
def far(make_ssh_bed: Callable[..., SshBed]) -> SshBed:
    return make_ssh_bed(1, rtt_ms=RTT_MS)


def relay_of(bed: SshBed) -> LatencyRelay:
    relay = bed.hosts[0].relay
    assert relay is not None
    return relay


def trips(relay: LatencyRelay, action: Callable[[], object]) -> float:
    """Round trips ``action`` took through ``relay``, and what it set going."""
    return relay.count(action)


def ssh_true(bed: SshBed) -> None:
    subprocess.run(["ssh", "-F", str(bed.ssh_config), "host-1", "true"], check=True, timeout=60)


@pytest.fixture
def runtime(far: SshBed) -> Iterator[Runtime]:
    with Runtime("host-1", connection_kwargs={**far.connection_kwargs, **QUIET}) as rt:
        rt.execute_function(lambda: 0)  # warm: cloudpickle and the task path are loaded
        yield rt


def test_a_runtime_is_ready_within_one_round_trip_of_ssh_host_true(far: SshBed) -> None:
    relay = relay_of(far)
    ssh = trips(relay, lambda: ssh_true(far))
    runtimes: list[Runtime] = []
    ours = trips(
        relay,
        lambda: runtimes.append(
            Runtime("host-1", connection_kwargs={**far.connection_kwargs, **QUIET})
        ),
    )
    runtimes[0].cleanup()
    assert ours <= ssh + 1, f"Runtime() ready took {ours} round trips, `ssh host true` {ssh}"


def test_a_warm_command_and_function_take_one_round_trip(far: SshBed, runtime: Runtime) -> None:
    relay = relay_of(far)
    command = trips(relay, lambda: runtime.execute_task(RuntimeTask().run_command("true"), False))
    function = trips(relay, lambda: runtime.execute_function(lambda: 1))
    assert (command, function) == (1, 1)


def _importer(name: str) -> Callable[[], int]:
    """A function (pickled by value, as a script's) whose body imports ``name``."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(f"def use():\n    import {name}\n    return {name}.TOTAL\n", namespace)
    function: Callable[[], int] = namespace["use"]
    return function


def test_a_function_needing_a_client_only_package_of_20_modules_costs_one_more(
    far: SshBed, runtime: Runtime, tmp_path: Path
) -> None:
    parts = [f"part{n}" for n in range(MODULES - 1)]
    files = {f"rtpkg/{part}.py": f"VALUE = {n}\n" for n, part in enumerate(parts)}
    files["rtpkg/__init__.py"] = "".join(f"from . import {part}\n" for part in parts) + (
        "TOTAL = " + " + ".join(f"{part}.VALUE" for part in parts) + "\n"
    )
    relay = relay_of(far)
    plain = trips(relay, lambda: runtime.execute_function(lambda: 1))
    with client_path(tmp_path / "client") as root:
        write_tree(root, files)
        function = _importer("rtpkg")
        result: list[int] = []
        shipped = trips(
            relay,
            lambda: result.extend(runtime.execute_function(function).function_returns),
        )
    assert result == [sum(range(MODULES - 1))]
    assert shipped <= plain + 2, f"{shipped} round trips with the package, {plain} without"


def _one_exchange(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"


def test_a_new_connection_through_a_tunnel_costs_what_ssh_l_costs(
    far: SshBed, runtime: Runtime
) -> None:
    """A channel open (a round trip), the exchange, the close: as ``ssh -L``."""
    relay = relay_of(far)
    target, ours_port, theirs_port = free_block(3, 28000, stop=32000)
    server = EchoServer(target, on=far.hosts[0]).start()  # on the host's own loopback
    try:
        runtime.expose_port_from_runtime(target, ours_port)
        _one_exchange(ours_port)  # the first one may still wait for the carrier's login
        ours = trips(relay, lambda: _one_exchange(ours_port))
        ssh = subprocess.Popen(
            ["ssh", "-F", str(far.ssh_config), "-N", "-L",
             f"127.0.0.1:{theirs_port}:127.0.0.1:{target}", "host-1"],
        )  # fmt: skip
        try:
            _wait_listening(theirs_port)
            _one_exchange(theirs_port)
            theirs = trips(relay, lambda: _one_exchange(theirs_port))
        finally:
            ssh.kill()
            ssh.wait(timeout=10)
    finally:
        server.stop()
    assert ours <= theirs <= 3, (ours, theirs)


def _wait_listening(port: int) -> None:
    from waiting import wait_until

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
        except OSError:
            return False
        return True

    wait_until(listening, 30, f"ssh -L listening on {port}")


def test_a_group_connects_its_hosts_in_as_many_round_trips_as_one_host(
    make_ssh_bed: Callable[..., SshBed],
) -> None:
    """The hosts of a group connect at once: its slowest host takes no more round trips
    than a host connected alone (what is left of a group's time is CPU, not latency)."""
    from actorcluster import RuntimeGroup

    bed = make_ssh_bed(5, rtt_ms=RTT_MS)
    relays = [host.relay for host in bed.hosts if host.relay is not None]
    assert len(relays) == len(bed.hosts)
    kwargs = {**bed.connection_kwargs, **QUIET}
    runtimes: list[Runtime] = []
    alone = relays[0].count(lambda: runtimes.append(Runtime("host-1", connection_kwargs=kwargs)))
    runtimes[0].cleanup()
    befores = [relay.settled() for relay in relays]
    group = RuntimeGroup(hosts=[host.name for host in bed.hosts], connection_kwargs=kwargs)
    try:
        afters = [relay.settled() for relay in relays]
    finally:
        group.cleanup()
    each = [(a["depth"] - b["depth"]) / 2 for a, b in zip(afters, befores, strict=True)]
    assert max(each) <= alone + 1, (each, alone)


def test_a_groups_hosts_all_start_connecting_before_any_is_connected(
    make_ssh_bed: Callable[..., SshBed],
) -> None:
    """The connects of a group's hosts overlap from their start: every host's SSH
    connect begins before the first one is through (no lock, no single thread, no start
    order holds one up behind another). Counted in the order of events, not in time: at
    100 ms RTT an SSH connect waits several round trips, starting one takes milliseconds."""
    from structlog.testing import capture_logs

    from actorcluster import RuntimeGroup

    bed = make_ssh_bed(4, rtt_ms=100)
    hosts = [host.name for host in bed.hosts]
    with capture_logs() as logs:
        RuntimeGroup(hosts=hosts, connection_kwargs={**bed.connection_kwargs, **QUIET}).cleanup()
    order = [
        (entry["event"], entry["host"])
        for entry in logs
        if entry["event"] in ("ssh.connect.started", "ssh.connect.succeeded")
    ]
    first_through = next(i for i, (event, _) in enumerate(order) if event.endswith("succeeded"))
    begun = [host for event, host in order[:first_through] if event.endswith("started")]
    assert sorted(begun) == sorted(hosts), order
