"""Which carrier a tunnel gets, and what the ``ssh`` carrier promises: the same login as
the runtime's, a fallback to the paramiko relay that is logged once, no process left.

A service exposed from a host, and a client of a port exposed to it, run ``on=`` the
host (its own loopback on an isolated bed, see ``test_tunnels_support``)."""

from __future__ import annotations

import ast
import shutil
import signal
import socket
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actorcluster import RemoteError, Runtime, UsageError
from actorcluster.ssh import SshTarget, connect, resolve_target
from actorcluster.tunnels import TunnelSpec, default_carrier, open_forwarder
from actorcluster.tunnels import carrier as carriers
from actorcluster.tunnels.openssh import listening_here, login_options, ssh_command
from test_tunnels_support import EchoServer, echo_round_trip, free_ports, ssh_pids_forwarding
from waiting import wait_until

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.fixture(scope="module")
def host(ssh_bed):
    """host-1, the runtime's host."""
    return ssh_bed.hosts[0]


@pytest.fixture(autouse=True)
def _fresh_notices():
    """Each test sees the fallback notices (and the ssh lookups) as a new process would."""
    carriers._forget()
    yield
    carriers._forget()


@pytest.fixture
def no_ssh_on_path(tmp_path, monkeypatch):
    """This machine, as far as tunnels can tell, has no ``ssh`` client."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _fallbacks(logs):
    return [entry for entry in logs if entry["event"] == "tunnel.carrier.fallback"]


def test_tunnels_of_a_host_ssh_can_log_in_to_are_carried_by_ssh(runtime, host):
    there, here, local, remote = free_ports(4)
    with EchoServer(there, on=host), EchoServer(here), capture_logs() as logs:
        keys = [
            runtime.expose_port_from_runtime(there, local),
            runtime.expose_port_to_runtime(here, remote),
        ]
        try:
            echo_round_trip(local)
            echo_round_trip(remote, on=host)
            for port in (local, remote):
                (pid,) = ssh_pids_forwarding(port)
                assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"-N"
        finally:
            for key in keys:
                runtime.stop_process(key)
    assert not _fallbacks(logs)
    wait_until(lambda: not ssh_pids_forwarding(local) + ssh_pids_forwarding(remote), 5, "ssh gone")


def test_without_an_ssh_client_tunnels_use_the_relay_and_say_so_once(runtime, host, no_ssh_on_path):
    there, here, *listen = free_ports(5)
    with EchoServer(there, on=host), EchoServer(here), capture_logs() as logs:
        keys = [
            runtime.expose_port_from_runtime(there, listen[0]),
            runtime.expose_port_to_runtime(here, listen[1]),
            runtime.expose_port_from_runtime(there, listen[2]),
        ]
        try:
            for port, on in zip(listen, (None, host, None), strict=True):
                echo_round_trip(port, on=on)
                assert not ssh_pids_forwarding(port)
        finally:
            for key in keys:
                runtime.stop_process(key)
    (notice,) = _fallbacks(logs)
    assert notice["log_level"] == "warning"
    assert notice["carrier"] == "paramiko"
    assert "no OpenSSH client" in notice["reason"]


def test_asking_for_ssh_where_there_is_none_is_a_usage_error(runtime, no_ssh_on_path):
    service, listen = free_ports(2)
    with pytest.raises(UsageError, match="no OpenSSH client"):
        runtime.expose_port_from_runtime(service, listen, carrier="openssh")
    assert f"host-1::-L::{listen}::{service}" not in runtime.get_processes()


def test_a_login_ssh_cannot_be_given_keeps_the_relay_and_says_so_once_per_host(ssh_bed):
    target = resolve_target("host-1", ssh_bed.connection_kwargs)
    assert default_carrier(target) == "openssh"
    with capture_logs() as logs:
        for _ in range(2):
            assert default_carrier(replace(target, password="secret")) == "paramiko"
        jumped = replace(target, proxy_jump=replace(target, alias="jump", passphrase="x"))
        assert default_carrier(jumped) == "paramiko"
    notices = _fallbacks(logs)
    assert [(n["host"], n["log_level"]) for n in notices] == [("host-1", "info")]
    assert "password" in notices[0]["reason"]
    assert "secret" not in str(notices)


def test_a_login_ssh_refuses_falls_back_to_the_relay_and_says_so_once(ssh_bed, tmp_path):
    # ssh refuses a private key file others may read; paramiko logs in with it.
    key = tmp_path / "readable_key"
    shutil.copy(ssh_bed.client_key, key)
    key.chmod(0o644)
    host = ssh_bed.hosts[0]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host readable-key\n    HostName {host.address}\n    Port {host.port}\n"
        f"    User {ssh_bed.user}\n    UserKnownHostsFile {ssh_bed.known_hosts}\n"
        "    IdentitiesOnly yes\n"
    )
    kwargs = {"ssh_config_path": str(config), "connect_kwargs": {"key_filename": str(key)}}
    there, here, local, remote = free_ports(4)
    with (
        Runtime("readable-key", connection_kwargs=kwargs) as rt,
        EchoServer(there, on=host),
        EchoServer(here),
        capture_logs() as logs,
    ):
        rt.expose_port_from_runtime(there, local)
        rt.expose_port_to_runtime(here, remote)
        echo_round_trip(local)
        echo_round_trip(remote, on=host)
        assert not ssh_pids_forwarding(local) + ssh_pids_forwarding(remote)
        with pytest.raises(RemoteError, match="Permission denied"):
            rt.expose_port_from_runtime(there, free_ports(1)[0], carrier="openssh")
    (notice,) = _fallbacks(logs)
    assert notice["host"] == "readable-key"
    assert notice["log_level"] == "warning"
    assert "Permission denied" in notice["reason"]


def test_a_host_behind_a_jump_gets_ssh_through_a_proxy_command(ssh_bed, tmp_path):
    config = ssh_bed.write_jump_config(tmp_path / "ssh_config")
    jump_log = ssh_bed.hosts[0].log_path
    behind = ssh_bed.hosts[1]
    there, here, local, remote = free_ports(4)
    kwargs = {"ssh_config_path": str(config)}
    with (
        Runtime("behind-the-jump", connection_kwargs=kwargs) as rt,
        EchoServer(there, on=behind),
        EchoServer(here),
    ):
        logins_before = jump_log.read_text().count("Accepted publickey")
        rt.expose_port_from_runtime(there, local)
        rt.expose_port_to_runtime(here, remote)
        echo_round_trip(local)
        echo_round_trip(remote, on=behind)
        for port in (local, remote):
            (pid,) = ssh_pids_forwarding(port)
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            assert any(arg.startswith("ProxyCommand=") for arg in argv)
        # each tunnel's ssh logged in through host-1, as the runtime did
        assert jump_log.read_text().count("Accepted publickey") == logins_before + 2


def test_the_login_options_are_ones_this_ssh_accepts_with_escapes_at_every_hop(tmp_path):
    client = carriers.openssh_client()
    assert client is not None, "the tests need OpenSSH's client (ssh)"
    key = tmp_path / "a key"
    key.write_text("not read here")
    far = SshTarget(alias="far", hostname="far.example", user="fu", port=24)
    near = replace(far, alias="near", hostname="near.example", user="nu", proxy_jump=far)
    target = SshTarget(
        alias="t",
        hostname="10.0.0.9",
        port=2222,
        user="tu",
        identity_files=(str(key), str(tmp_path / "missing")),
        known_hosts_files=(str(tmp_path / "known 100%"),),
        allow_agent=False,
        look_for_keys=False,
        proxy_jump=near,
    )
    argv = [client.path, *login_options(client, target), "-G", target.hostname]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert (seen["user"], seen["port"], seen["identityagent"]) == ("tu", "2222", "none")
    assert seen["userknownhostsfile"] == f"{tmp_path}/known 100%"
    assert "missing" not in " ".join(argv)
    proxy = seen["proxycommand"]
    assert "-W 10.0.0.9:2222 near.example" in proxy
    assert "-W near.example:24 far.example" in proxy  # the jump's own jump


@pytest.mark.parametrize(
    ("version", "direction", "verbosity"),
    [
        ((9, 2), "-L", ["-o", "LogLevel=VERBOSE"]),
        (
            (9, 2),
            "-R",
            ["-o", "LogLevel=VERBOSE", "-o", "LogVerbose=ssh.c:ssh_confirm_remote_forward():*"],
        ),
        ((8, 4), "-L", ["-o", "LogLevel=VERBOSE"]),
        ((8, 4), "-R", ["-v"]),  # no LogVerbose before 8.5
    ],
)
def test_ssh_logs_nothing_per_connection_where_its_version_allows(version, direction, verbosity):
    client = carriers.OpenSshClient("/usr/bin/ssh", version)
    target = SshTarget(alias="t", hostname="10.0.0.9", user="u", look_for_keys=False)
    spec = TunnelSpec(host="t", direction=direction, local_port=5000, runtime_port=6000)
    command = ssh_command(client, target, spec)
    assert command[:2] == ["/usr/bin/ssh", "-N"]
    assert command[2 : 2 + len(verbosity)] == verbosity
    assert "-v" not in command[2 + len(verbosity) :]
    listen, target_port = (5000, 6000) if direction == "-L" else (6000, 5000)
    assert command[-3:] == [direction, f"127.0.0.1:{listen}:127.0.0.1:{target_port}", "10.0.0.9"]


def test_open_forwarder_needs_only_what_a_tunnel_host_offers(ssh_bed, host):
    target = resolve_target("host-1", ssh_bed.connection_kwargs)
    service, listen = free_ports(2)
    with connect(target) as connection, EchoServer(service, on=host):
        host = types.SimpleNamespace(
            host="host-1",
            options=types.SimpleNamespace(target=target, is_local=False),
            connection=connection,
        )
        for carrier in ("paramiko", None):
            spec = TunnelSpec(
                host="host-1",
                direction="-L",
                local_port=listen,
                runtime_port=service,
                carrier=carrier,
            )
            forwarder = open_forwarder(host, spec, on_failed=print)
            try:
                assert forwarder.carrier == (carrier or "openssh")
                echo_round_trip(listen)
            finally:
                forwarder.close()
            wait_until(lambda: not listening_here(listen), 5, "the listener closed")


def test_listening_here_sees_a_listener_come_and_go():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert listening_here(port) is False
        sock.listen(1)
        assert listening_here(port) is True
    assert listening_here(port) is False


_CLIENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from actorcluster import Runtime
rt = Runtime("host-1", connection_kwargs={"ssh_config_path": sys.argv[2]})
rt.expose_port_from_runtime(int(sys.argv[3]), int(sys.argv[4]))
rt.expose_port_to_runtime(int(sys.argv[3]), int(sys.argv[5]))
print("up", flush=True)
time.sleep(60)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no one reaped yet does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_no_ssh_outlives_a_client_that_is_killed(ssh_bed):
    service, local, remote = free_ports(3)
    args = [str(SRC), str(ssh_bed.ssh_config), service, local, remote]
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "up"
        pids = ssh_pids_forwarding(local) + ssh_pids_forwarding(remote)
        assert len(pids) == 2
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        wait_until(lambda: not any(map(_running, pids)), 10, "ssh gone")
    finally:
        client.kill()
        client.wait()
        if client.stdout is not None:
            client.stdout.close()


def test_tunnels_import_neither_paramiko_nor_the_layers_above():
    package = SRC / "actorcluster" / "tunnels"
    banned = ("paramiko", "actorcluster.actors", "actorcluster.processes", "actorcluster.runtime")
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
