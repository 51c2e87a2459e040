"""Connecting to real sshd hosts: sessions, ProxyJump, host keys, and every failure translated."""

from __future__ import annotations

import base64
import socket
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import paramiko
import pytest
from structlog.testing import capture_logs

from actorcluster import errors
from actorcluster.ssh import SshConnection, connect, resolve_target
from actorcluster.ssh.translate import translate_error
from sshbed import write_ed25519_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sshbed import SshBed

SESSION_TIMEOUT = 10.0


def run(connection: SshConnection, command: str) -> tuple[bytes, int]:
    """Run ``command`` on a new session channel; return (stdout, exit status)."""
    channel = connection.open_session()
    channel.settimeout(SESSION_TIMEOUT)
    channel.exec_command(command)
    output = channel.makefile("rb").read()
    status = channel.recv_exit_status()
    channel.close()
    return output, status


@contextmanager
def translated(kind: type[errors.ActorClusterError], host: str) -> Iterator[list[Exception]]:
    """Expect ``kind`` naming ``host``, caused by the original error, with no paramiko type."""
    caught: list[Exception] = []
    with pytest.raises(kind) as info:
        yield caught
    exc = info.value
    caught.append(exc)
    assert not any(c.__module__.startswith("paramiko") for c in type(exc).__mro__)
    assert host in str(exc), str(exc)


def no_config(tmp_path: Path) -> str:
    path = tmp_path / "empty_ssh_config"
    path.touch()
    return str(path)


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A port whose kernel accepts TCP connections that nobody ever answers."""
    server = socket.socket()
    server.bind(("127.0.0.6", 0))
    server.listen(8)
    yield server.getsockname()
    server.close()


@pytest.fixture
def silent_listener_behind_host_1(ssh_bed: SshBed) -> Iterator[tuple[str, int]]:
    """A port that host-1 (a bastion) reaches, whose kernel accepts TCP connections that
    nobody ever answers: on host-1's own loopback (its machine, isolated or not)."""
    program = (
        "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen(8);"
        "print(s.getsockname()[1],flush=True);time.sleep(600)"
    )
    proc = ssh_bed.hosts[0].run([sys.executable, "-c", program], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        yield "127.0.0.1", int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def full_listener() -> Iterator[tuple[str, int]]:
    """A port whose accept queue is full, so new connects never complete (SYNs dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.7", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    yield server.getsockname()
    for filler in fillers:
        filler.close()
    server.close()


@pytest.fixture
def fake_server() -> Iterator[Callable[[bytes], tuple[str, int]]]:
    """``fake_server(reply)``: a port that answers one connection with ``reply``, then idles."""
    done = threading.Event()
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def serve(server: socket.socket, reply: bytes) -> None:
        peer, _ = server.accept()
        with peer:
            peer.sendall(reply)
            done.wait(SESSION_TIMEOUT)

    def start(reply: bytes) -> tuple[str, int]:
        server = socket.socket()
        server.bind(("127.0.0.8", 0))
        server.listen(1)
        sockets.append(server)
        threads.append(threading.Thread(target=serve, args=(server, reply), daemon=True))
        threads[-1].start()
        return server.getsockname()  # type: ignore[no-any-return]

    yield start
    done.set()
    for server in sockets:
        server.close()
    for thread in threads:
        thread.join(SESSION_TIMEOUT)


@pytest.fixture
def closed_port() -> tuple[str, int]:
    """An address and port with nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.5", 0))
        return probe.getsockname()  # type: ignore[no-any-return]


def test_connect_runs_echo_ok_over_a_session_with_aes_gcm(ssh_bed: SshBed) -> None:
    target = resolve_target("host-1", ssh_bed.connection_kwargs)
    with capture_logs() as logs, connect(target) as connection:
        assert connection.is_active()
        assert run(connection, "echo ok") == (b"ok\n", 0)
        assert connection.cipher == "aes128-gcm@openssh.com"
        assert connection.target is target
    assert not connection.is_active()
    connection.close()  # idempotent
    events = [(e["event"], e.get("host")) for e in logs if e["event"].startswith("ssh.connect.")]
    assert events == [("ssh.connect.started", "host-1"), ("ssh.connect.succeeded", "host-1")]
    succeeded = next(e for e in logs if e["event"] == "ssh.connect.succeeded")
    assert succeeded["cipher"] == "aes128-gcm@openssh.com"
    assert succeeded["seconds"] < 5


def test_many_sessions_run_at_once_on_one_connection(ssh_bed: SshBed) -> None:
    with connect(resolve_target("host-2", ssh_bed.connection_kwargs)) as connection:
        channels = [connection.open_session() for _ in range(5)]
        for i, channel in enumerate(channels):
            channel.exec_command(f"echo {i}")
        outputs = [c.makefile("rb").read() for c in channels]
    assert outputs == [f"{i}\n".encode() for i in range(5)]


def test_proxy_jump_via_host_1_reaches_host_2(ssh_bed: SshBed, tmp_path: Path) -> None:
    host1, host2 = ssh_bed.hosts[:2]
    address, port = ssh_bed.behind(host1, host2)  # where host-1 reaches host-2
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jumped-2\n  HostName {address}\n  Port {port}\n  ProxyJump host-1\n"
        f"  IdentityFile {ssh_bed.client_key}\n  UserKnownHostsFile {ssh_bed.known_hosts}\n\n"
        + ssh_bed.ssh_config.read_text()
    )
    target = resolve_target("jumped-2", {"ssh_config_path": str(config)})
    with capture_logs() as logs:
        connection = connect(target)
    jump_channel = connection.transport.sock
    assert isinstance(jump_channel, paramiko.Channel)
    jump_transport = jump_channel.get_transport()
    came_from, _, reached, _ = run(connection, "echo $SSH_CONNECTION")[0].decode().split()
    assert reached == address
    if ssh_bed.isolated:  # separate machines: host-2 saw the login come from host-1
        assert came_from == host1.sshd_address
    assert [e["host"] for e in logs if e["event"] == "ssh.connect.succeeded"] == [
        "host-1",
        "jumped-2",
    ]
    connection.close()
    assert not jump_transport.is_active()  # closing the target closes the jump too


def test_the_gateway_kwarg_jumps_like_proxy_jump(ssh_bed: SshBed) -> None:
    ssh_bed.behind(ssh_bed.hosts[0], ssh_bed.hosts[2])  # host-1 reaches host-3 (isolated too)
    target = resolve_target("host-3", {**ssh_bed.connection_kwargs, "gateway": "host-1"})
    with connect(target) as connection:
        assert run(connection, "echo ok") == (b"ok\n", 0)


def test_an_unknown_host_name_raises_unknown_host_error(tmp_path: Path) -> None:
    target = resolve_target("no-such-host.invalid", {"ssh_config_path": no_config(tmp_path)})
    with capture_logs() as logs, translated(errors.UnknownHostError, "no-such-host.invalid") as e:
        connect(target)
    assert isinstance(e[0].__cause__, socket.gaierror)
    failed = [x for x in logs if x["event"] == "ssh.connect.failed"]
    assert failed[0]["host"] == "no-such-host.invalid"
    assert "resolve" in failed[0]["error"]


def test_an_unknown_host_name_behind_a_jump_raises_unknown_host_error(ssh_bed: SshBed) -> None:
    kwargs = {**ssh_bed.connection_kwargs, "gateway": "host-1"}
    target = resolve_target("no-such-host.invalid", kwargs)
    with translated(errors.UnknownHostError, "no-such-host.invalid") as e:
        connect(target)
    assert "not known" in str(e[0]) or "resol" in str(e[0])  # resolve, resolution


@pytest.mark.parametrize(
    "words",
    ["Name or service not known", "Temporary failure in name resolution", "No address"],
)
def test_a_name_the_jump_host_cannot_look_up_is_an_unknown_host(words: str, tmp_path: Path) -> None:
    """A jump host's resolver fails in its own words (getaddrinfo's, in sshd's refusal of
    the channel): each is an unknown host, as every gaierror of a direct connect is."""
    exc = paramiko.ChannelException(2, words)
    kwargs = {"ssh_config_path": no_config(tmp_path), "gateway": "host-1"}
    target = resolve_target("far.example", kwargs)
    error = translate_error(exc, target, "tunnel through host-1 to far.example:22", 5.0)
    assert type(error) is errors.UnknownHostError
    assert words in str(error)


def test_a_refused_port_raises_connection_refused(
    tmp_path: Path, closed_port: tuple[str, int]
) -> None:
    address, port = closed_port
    target = resolve_target(address, {"ssh_config_path": no_config(tmp_path), "port": port})
    with translated(errors.ConnectionRefusedHostError, address) as e:
        connect(target)
    assert isinstance(e[0].__cause__, ConnectionRefusedError)


def test_a_refused_port_behind_a_jump_raises_connection_refused(
    ssh_bed: SshBed, closed_port: tuple[str, int]
) -> None:
    address, port = closed_port
    kwargs = {**ssh_bed.connection_kwargs, "gateway": "host-1", "port": port}
    with translated(errors.ConnectionRefusedHostError, address) as e:
        connect(resolve_target(address, kwargs))
    assert isinstance(e[0].__cause__, paramiko.ChannelException)
    assert "Connection refused" in str(e[0])


def test_a_tunnel_to_a_refused_port_raises_connection_refused(
    ssh_bed: SshBed, closed_port: tuple[str, int]
) -> None:
    with connect(resolve_target("host-1", ssh_bed.connection_kwargs)) as connection:
        with translated(errors.ConnectionRefusedHostError, "host-1"):
            connection.open_direct_tcpip(closed_port)
        assert connection.is_active()  # a refused channel leaves the connection usable


def test_a_key_the_server_does_not_know_raises_authentication_error(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    host = ssh_bed.hosts[0]
    stranger = tmp_path / "stranger_key"
    write_ed25519_key(stranger, "stranger")
    kwargs: dict[str, Any] = {
        "ssh_config_path": no_config(tmp_path),
        "port": host.port,
        "known_hosts": str(ssh_bed.known_hosts),
        "connect_kwargs": {
            "key_filename": [str(stranger), str(tmp_path / "missing_key")],
            "password": "hunter2",
            "allow_agent": False,
            "look_for_keys": False,
        },
    }
    with translated(errors.AuthenticationError, host.address) as e:
        connect(resolve_target(host.address, kwargs))
    message = str(e[0])
    assert str(stranger) in message
    assert f"{tmp_path / 'missing_key'} (missing)" in message
    assert "password" in message
    assert "hunter2" not in message
    assert stranger.read_text().splitlines()[1] not in message


def test_an_unknown_host_key_is_refused_by_default(ssh_bed: SshBed, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.touch()
    target = resolve_target("host-1", {**ssh_bed.connection_kwargs, "known_hosts": empty})
    with translated(errors.UnknownHostKeyError, "host-1") as e:
        connect(target)
    assert str(empty) in str(e[0])
    assert "SHA256:" in str(e[0])
    assert empty.read_text() == ""


def test_an_unknown_host_key_is_recorded_when_new_keys_are_trusted(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    host = ssh_bed.hosts[0]
    known_hosts = tmp_path / "new_dir" / "known_hosts"
    kwargs = {**ssh_bed.connection_kwargs, "known_hosts": known_hosts}
    with (
        capture_logs() as logs,
        connect(resolve_target("host-1", {**kwargs, "accept_new_host_keys": True})) as connection,
    ):
        assert run(connection, "echo ok") == (b"ok\n", 0)
    assert known_hosts.read_text() == host.known_hosts_line + "\n"
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    accepted = [e for e in logs if e["event"] == "ssh.hostkey.accepted"]
    assert accepted[0]["host"] == "host-1"
    assert accepted[0]["known_hosts"] == str(known_hosts)
    with connect(resolve_target("host-1", kwargs)):  # now known: no trust needed
        pass


def test_a_changed_host_key_always_raises_even_when_new_keys_are_trusted(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    old_fingerprint = _fingerprint(host.host_public_key)
    host.replace_host_key()
    new_fingerprint = _fingerprint(host.host_public_key)
    for trust in (False, True):
        kwargs = {**bed.connection_kwargs, "accept_new_host_keys": trust}
        with translated(errors.HostKeyChangedError, "host-1") as e:
            connect(resolve_target("host-1", kwargs))
        message = str(e[0])
        assert old_fingerprint in message
        assert new_fingerprint in message
        assert str(bed.known_hosts) in message
    assert bed.known_hosts.read_text().count("ssh-ed25519") == 1  # nothing was added


def _fingerprint(public_line: str) -> str:
    kind, data = public_line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(data)).fingerprint


def test_a_listener_that_never_sends_a_banner_times_out_in_time(
    tmp_path: Path, silent_listener: tuple[str, int]
) -> None:
    address, port = silent_listener
    kwargs = {"ssh_config_path": no_config(tmp_path), "port": port, "connect_timeout": 0.5}
    started = time.monotonic()
    with translated(errors.HostUnreachableError, address) as e:
        connect(resolve_target(address, kwargs))
    assert time.monotonic() - started < 3.0
    assert type(e[0]) is errors.HostUnreachableError
    assert "timed out after 0.5 s" in str(e[0])


def test_a_connect_that_is_never_answered_times_out_in_time(
    tmp_path: Path, full_listener: tuple[str, int]
) -> None:
    address, port = full_listener
    kwargs = {"ssh_config_path": no_config(tmp_path), "port": port, "connect_timeout": 0.5}
    started = time.monotonic()
    with translated(errors.HostUnreachableError, address) as e:
        connect(resolve_target(address, kwargs))
    assert time.monotonic() - started < 3.0
    assert f"TCP connect to {address}:{port} timed out after 0.5 s" in str(e[0])


def test_a_server_that_never_starts_the_key_exchange_times_out_in_time(
    tmp_path: Path, fake_server: Callable[[bytes], tuple[str, int]]
) -> None:
    address, port = fake_server(b"SSH-2.0-OpenSSH_9.6 silent\r\n")
    kwargs = {"ssh_config_path": no_config(tmp_path), "port": port, "connect_timeout": 0.5}
    started = time.monotonic()
    with translated(errors.HostUnreachableError, address) as e:
        connect(resolve_target(address, kwargs))
    assert time.monotonic() - started < 3.0
    assert "SSH handshake with" in str(e[0])
    assert "timed out after 0.5 s" in str(e[0])


def test_a_server_speaking_ssh_1_is_an_ssh_protocol_error(
    tmp_path: Path, fake_server: Callable[[bytes], tuple[str, int]]
) -> None:
    address, port = fake_server(b"SSH-1.5-ancient\r\n")
    kwargs = {"ssh_config_path": no_config(tmp_path), "port": port, "connect_timeout": 2}
    with translated(errors.HostUnreachableError, address) as e:
        connect(resolve_target(address, kwargs))
    assert type(e[0]) is errors.HostUnreachableError
    assert "Incompatible version (1.5 instead of 2.0)" in str(e[0])
    assert isinstance(e[0].__cause__, paramiko.SSHException)


def test_a_silent_host_behind_a_jump_times_out_and_closes_the_jump(
    silent_listener_behind_host_1: tuple[str, int], ssh_bed: SshBed
) -> None:
    address, port = silent_listener_behind_host_1
    kwargs = {**ssh_bed.connection_kwargs, "gateway": "host-1", "port": port}
    started = time.monotonic()
    with translated(errors.HostUnreachableError, address) as e:
        connect(resolve_target(address, {**kwargs, "connect_timeout": 0.5}))
    assert time.monotonic() - started < 4.0
    assert "timed out after 0.5 s" in str(e[0])


def test_a_lost_connection_raises_host_unreachable_on_open(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    connection = connect(resolve_target("host-1", bed.connection_kwargs))
    bed.hosts[0].stop()
    connection.transport.join(SESSION_TIMEOUT)  # the transport thread ends on EOF
    assert not connection.is_active()
    with translated(errors.HostUnreachableError, "host-1") as e:
        connection.open_session()
    assert "lost" in str(e[0])
    connection.close()
    with translated(errors.HostUnreachableError, "host-1") as e:
        connection.open_direct_tcpip(("127.0.0.1", 22))
    assert "closed" in str(e[0])


def test_keepalive_follows_server_alive_interval(ssh_bed: SshBed, tmp_path: Path) -> None:
    """White-box: paramiko has no getter for the keepalive interval."""
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  ServerAliveInterval 2\n\n" + ssh_bed.ssh_config.read_text())
    with connect(resolve_target("host-1", {"ssh_config_path": str(config)})) as connection:
        interval = connection.transport.packetizer._Packetizer__keepalive_interval  # type: ignore[attr-defined]
    assert interval == 2
