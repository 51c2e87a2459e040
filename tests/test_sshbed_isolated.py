"""Isolated beds: each host a separate machine on the network, with real partitions."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sshbed_net import LOCK_DIR
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

ECHO = textwrap.dedent(
    """
    import socket, sys, threading
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen()
    print("ready", flush=True)
    def echo(conn):
        while data := conn.recv(65536):
            conn.sendall(data)
    while True:
        threading.Thread(target=echo, args=(server.accept()[0],), daemon=True).start()
    """
)


def ssh(bed: SshBed, host: str, command: str) -> str:
    """``command``'s output on ``host`` through the OpenSSH client (must succeed)."""
    return subprocess.run(
        ["ssh", "-F", str(bed.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def start_echo(bed: SshBed, index: int, address: str, port: int) -> subprocess.Popen[bytes]:
    """An echo service on host ``index``, listening on ``address:port`` there."""
    proc = bed.hosts[index].run(
        [sys.executable, "-c", ECHO, address, str(port)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_each_host_has_its_own_address_and_loopback(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(2)
    one, two = bed.hosts
    assert one.address != two.address
    assert not one.address.startswith("127.")
    client, _, server, _ = ssh(bed, "host-1", "echo $SSH_CONNECTION").split()
    assert (client, server) == (one.net.gateway, one.address)  # it sees us from outside
    assert "127.0.0.1" in ssh(bed, "host-2", "ip -4 -o addr show lo")
    # A service on the host's own loopback is the host's alone: not reachable here.
    port = 17000 + bed.net_block.block
    start_echo(bed, 0, "127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    with socket.create_connection((one.address, 22), 5) as sock:  # sshd is there
        assert sock.recv(4).startswith(b"SSH-")


def test_a_partition_is_silence_not_a_reset_and_heal_resumes(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1)
    host = bed.hosts[0]
    start_echo(bed, 0, "0.0.0.0", 7000)
    with socket.create_connection((host.address, 7000), 5) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        host.partition()
        sock.sendall(b"during")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):  # silence: no reply, no reset, no error
            sock.recv(100)
        with pytest.raises(TimeoutError):  # a new connection hangs too (no refusal)
            socket.create_connection((host.address, 7000), 1.0).close()
        host.heal()
        sock.settimeout(20.0)  # TCP retransmits (backing off) until the link is back
        assert sock.recv(100) == b"during"
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"


def test_an_ssh_session_survives_a_short_partition(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1)
    host = bed.hosts[0]
    session = subprocess.Popen(
        ["ssh", "-F", str(bed.ssh_config), "host-1", "cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert session.stdin is not None and session.stdout is not None
    try:
        session.stdin.write(b"one\n")
        session.stdin.flush()
        assert session.stdout.readline() == b"one\n"
        host.partition()
        session.stdin.write(b"two\n")
        session.stdin.flush()
        with pytest.raises(subprocess.TimeoutExpired):
            session.wait(timeout=1.5)  # still connected: nothing came, nothing ended it
        host.heal()
        assert session.stdout.readline() == b"two\n"
    finally:
        session.kill()
        session.wait(timeout=10)
        session.stdin.close()
        session.stdout.close()


def test_concurrent_beds_get_their_own_blocks_and_names(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    first, second = make_isolated_bed(1), make_isolated_bed(1)
    assert first.net_block.block != second.net_block.block
    assert first.hosts[0].net.netns != second.hosts[0].net.netns
    assert {first.hosts[0].net.netns, second.hosts[0].net.netns} <= namespaces()
    assert (LOCK_DIR / f"{first.net_block.block}.lock").exists()


def test_stop_removes_namespaces_links_and_services(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(2)
    service = start_echo(bed, 1, "127.0.0.1", 7001)
    names = {host.net.netns for host in bed.hosts}
    links = {host.net.outer for host in bed.hosts}
    bed.stop()
    assert not names & namespaces()
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert not [link for link in links if f" {link}@" in out.stdout]
    assert service.wait(timeout=10) != 0


def test_the_watchdog_removes_namespaces_of_a_process_killed_with_sigkill(
    make_isolated_bed: Callable[..., SshBed], tmp_path: Path
) -> None:
    del make_isolated_bed  # only its skip where namespaces cannot be made
    program = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from sshbed import SshBed
        bed = SshBed({str(tmp_path / "bed")!r}, 2, isolated=True).start()
        print(" ".join(h.net.netns for h in bed.hosts), flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        names = set(proc.stdout.readline().split())
        assert len(names) == 2 and names <= namespaces()
        proc.kill()
        proc.wait(timeout=10)
    wait_until(lambda: not names & namespaces(), timeout=15, what="namespaces removed")
