"""The relay parts on their own: the fast receive buffer and the two-way relay."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import paramiko
import pytest
from paramiko.buffered_pipe import PipeTimeout

from actorcluster.ssh.channel_io import FastPipe, install_fast_pipe
from actorcluster.tunnels.relay import RelaySet, SocketEnd
from waiting import wait_until


def test_the_fast_pipe_returns_what_was_fed_in_order_across_read_sizes():
    pipe = FastPipe()
    pieces = [os.urandom(size) for size in (1, 700, 65536, 3, 100_000)]
    for piece in pieces:
        pipe.feed(piece)
    assert len(pipe) == sum(map(len, pieces))
    out = b"".join(pipe.read(size) for size in (5, 1000, 70000, 1_000_000))
    assert out == b"".join(pieces)
    assert not pipe.read_ready()


def test_the_fast_pipe_times_out_then_reads_empty_once_closed():
    pipe = FastPipe()
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.01)
    pipe.feed(b"last")
    pipe.close()
    assert pipe.read(10) == b"last"
    assert pipe.read(10) == b""


def test_the_fast_pipe_wakes_a_blocked_reader():
    pipe = FastPipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read(100)))
    reader.start()
    pipe.feed(b"wake")
    reader.join(5)
    assert got == [b"wake"]


def test_installing_the_fast_pipe_keeps_data_and_redirects_late_feeds_and_closes():
    channel = paramiko.Channel(7)
    old = channel.in_buffer
    old.feed(b"before ")
    assert install_fast_pipe(channel)
    assert isinstance(channel.in_buffer, FastPipe)
    old.feed(b"after")  # a feed already headed for the old buffer
    old.close()
    assert channel.in_buffer.read(100) == b"before after"
    assert channel.in_buffer.read(100) == b""


def test_a_relay_carries_both_ways_and_passes_half_closes_on():
    client, relay_left = socket.socketpair()
    relay_right, service = socket.socketpair()
    relays = RelaySet()
    thread = threading.Thread(
        target=relays.run, args=(SocketEnd(relay_left), SocketEnd(relay_right))
    )
    thread.start()
    payload = os.urandom(3 * 2**20)
    sender = threading.Thread(target=lambda: (client.sendall(payload), client.shutdown(1)))
    sender.start()
    received = bytearray()
    while data := service.recv(65536):
        received += data
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    service.sendall(b"reply")
    service.shutdown(socket.SHUT_WR)
    assert client.recv(100) == b"reply"
    assert client.recv(100) == b""
    thread.join(5)
    assert not thread.is_alive()
    wait_until(lambda: len(relays) == 0, 5, "the relay forgotten")
    sender.join(5)
    for sock in (client, service):
        sock.close()


def test_closing_a_relay_set_ends_its_relays_at_once():
    client, relay_left = socket.socketpair()
    relay_right, service = socket.socketpair()
    relays = RelaySet()
    thread = threading.Thread(
        target=relays.run, args=(SocketEnd(relay_left), SocketEnd(relay_right))
    )
    thread.start()
    client.sendall(b"x")
    assert service.recv(1) == b"x"
    relays.close()
    thread.join(5)
    assert not thread.is_alive()
    assert client.recv(1) == b""
    assert service.recv(1) == b""
    for sock in (client, service):
        sock.close()
