"""The latency relay: the round-trip time asked, round trips counted, order and
back-pressure kept; and beds whose hosts are reached through it (``rtt_ms``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from latency_relay import HELD_LIMIT, LatencyRelay

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sshbed import SshBed

RTT_MS = 20.0


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """An echo service here, in threads; its address."""
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def echo(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn, contextlib.suppress(OSError):  # the relay went away: so do we
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[:2]
    server.close()
    for conn in conns:
        conn.close()


@pytest.fixture
def relay(echo_server: tuple[str, int]) -> Iterator[LatencyRelay]:
    relay = LatencyRelay(echo_server, RTT_MS).start()
    yield relay
    relay.stop()


def connect(relay: LatencyRelay) -> socket.socket:
    sock = socket.create_connection(relay.address, 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ping_pong(sock: socket.socket) -> float:
    started = time.perf_counter()
    sock.sendall(b"x")
    assert sock.recv(10) == b"x"
    return (time.perf_counter() - started) * 1000


def test_a_ping_pong_takes_the_round_trip_time_asked(relay: LatencyRelay) -> None:
    """Never faster than asked; the median within 10% of it. The relay's own timer and
    this machine's load only ever add, so a loaded moment gets two more rounds: the
    relay is judged by its best round (load cannot make a relay faster than asked)."""
    medians = []
    with connect(relay) as sock:
        ping_pong(sock)  # the connection's own handshake round trip is behind us
        for _ in range(3):
            samples = [ping_pong(sock) for _ in range(15)]
            assert min(samples) >= RTT_MS * 0.98, samples
            medians.append(statistics.median(samples))
            if medians[-1] <= RTT_MS * 1.10:
                break
    assert min(medians) <= RTT_MS * 1.10, medians


def test_round_trips_are_counted_not_timed(relay: LatencyRelay) -> None:
    before = relay.stats()
    with connect(relay) as sock:
        for _ in range(5):
            ping_pong(sock)
    assert relay.round_trips(before) == 1 + 5  # the handshake, then each exchange
    with connect(relay) as sock:  # connected (its handshake counted): only the exchanges
        ping_pong(sock)
        middle = relay.stats()
        ping_pong(sock)
        ping_pong(sock)
        assert relay.round_trips(middle) == 2
    assert relay.stats()["connections"] == 2


def test_order_and_content_are_kept_both_ways(relay: LatencyRelay) -> None:
    payload = os.urandom(3_000_000)
    received = bytearray()
    with connect(relay) as sock:

        def read() -> None:
            while len(received) < len(payload):
                received.extend(sock.recv(1 << 20))

        reader = threading.Thread(target=read)
        reader.start()
        for offset in range(0, len(payload), 7919):  # odd-sized pieces
            sock.sendall(payload[offset : offset + 7919])
        reader.join(30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_a_receiver_that_does_not_read_stops_the_sender(
    relay: LatencyRelay, echo_server: tuple[str, int]
) -> None:
    """Back-pressure: the echo's replies are never read, so the echo stops reading, so
    the relay stops reading: a non-blocking sender soon cannot write any more, having
    written about what the relay may hold plus the sockets' buffers."""
    del echo_server
    with connect(relay) as sock:
        sock.setblocking(False)
        sent = 0
        chunk = b"z" * 65536
        stalled_since = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                sent += sock.send(chunk)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0:
                    break
                time.sleep(0.01)
        assert stalled_since is not None, f"sent {sent} bytes and never blocked"
        # what both relay directions hold, and the five sockets' buffers each way
        # (kernel autotuning grows them up to tcp_rmem/tcp_wmem's maximum), at most
        assert sent <= 2 * HELD_LIMIT + 5 * (_tcp_max("rmem") + _tcp_max("wmem")), sent


def _tcp_max(kind: str) -> int:
    """The most a TCP socket's receive (``rmem``) or send (``wmem``) buffer grows to."""
    return int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[2])


def test_hosts_of_an_rtt_bed_are_reached_through_the_relay(
    make_ssh_bed: Callable[..., SshBed],
) -> None:
    bed = make_ssh_bed(1, rtt_ms=RTT_MS)
    host = bed.hosts[0]
    assert host.relay is not None
    assert host.port == host.relay.address[1] != host.sshd_port
    before = host.relay.stats()
    done = subprocess.run(
        ["ssh", "-F", str(bed.ssh_config), host.name, "echo hello"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == "hello\n"
    trips = host.relay.round_trips(before)
    assert 4 <= trips <= 12, trips  # OpenSSH's login: a handful of round trips


def test_an_isolated_rtt_bed_partitions_behind_its_relay(
    make_isolated_bed: Callable[..., SshBed],
) -> None:
    bed = make_isolated_bed(1, rtt_ms=RTT_MS)
    host = bed.hosts[0]
    with socket.create_connection((host.address, host.port), 10) as sock:
        assert sock.recv(4) == b"SSH-"
        sock.recv(200)
        host.partition()
        sock.sendall(b"SSH-2.0-test\r\n")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):  # silence through the relay too
            sock.recv(100)
        host.heal()
        sock.settimeout(20.0)
        assert sock.recv(100)  # sshd's key exchange offer, once the link is back
