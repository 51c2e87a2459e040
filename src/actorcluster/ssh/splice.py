"""Relaying an SSH channel to a local stream socket: the keeper lends a runtime in
another process a channel on a connection it holds (:mod:`actorcluster.cli.keeper_channels`).

Each direction is a blocking loop on a thread of its own: a side that does not take what
it is sent holds the other back (nothing buffered without bound), and an EOF is passed on
as one (half-closes hold). The channel's stderr goes to a descriptor of the caller's (a
pipe), drained even when that fails, so unread stderr never holds the channel's window.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING

from actorcluster._workers import THREADS
from actorcluster.ssh.channel_io import install_fast_pipe, send_all
from actorcluster.ssh.translate import ssh_errors

if TYPE_CHECKING:
    import paramiko

    from actorcluster.ssh.connect import SshConnection

__all__ = ["exec_channel", "splice"]

_CHUNK = 1 << 20
"""Bytes read at most at once (the fast receive buffer hands over what it holds)."""
_SOCKET_BUFFER = 1 << 20
"""The Unix socket's send buffer: a channel's data waits there, not in many small sends."""


def exec_channel(connection: SshConnection, command: str, window_size: int) -> paramiko.Channel:
    """A session channel of ``connection`` running ``command``.

    Raises:
        HostUnreachableError: the connection is closed, or the host refused.
    """
    channel = connection.open_session(window_size=window_size)
    target = connection.target
    with ssh_errors(target, f"starting a command on {target.address}", target.channel_timeout):
        channel.exec_command(command)
    return channel


def splice(channel: paramiko.Channel, sock: socket.socket, stderr_fd: int | None) -> None:
    """Relay between ``sock`` and ``channel`` (and its stderr to ``stderr_fd``, which is
    closed after) until both directions ended; then close the channel."""
    install_fast_pipe(channel)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
    try:
        jobs = [THREADS.start(_to_channel, sock, channel, name="keeper-splice-in")]
        if stderr_fd is not None:
            jobs.append(THREADS.start(_stderr_to, channel, stderr_fd, name="keeper-stderr"))
            stderr_fd = None
        _from_channel(channel, sock)
        for job in jobs:
            job.join(None)
    finally:
        with contextlib.suppress(Exception):  # paramiko may raise anything mid-teardown
            channel.close()
        if stderr_fd is not None:
            os.close(stderr_fd)


def _to_channel(sock: socket.socket, channel: paramiko.Channel) -> None:
    """The caller's bytes to the channel; its EOF as the channel's."""
    try:
        while True:
            data = sock.recv(_CHUNK)
            if not data:
                channel.shutdown_write()
                return
            send_all(channel, data)
    except Exception:  # the socket or the channel failed: end both
        with contextlib.suppress(Exception):
            channel.close()


def _from_channel(channel: paramiko.Channel, sock: socket.socket) -> None:
    """The channel's bytes to the caller; its EOF as the socket's. Once the channel
    closed, the caller's side is shut too (which ends :func:`_to_channel`)."""
    try:
        while True:
            data = channel.recv(_CHUNK)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        channel.status_event.wait()  # set on the exit status, and when the channel closes
    except Exception:  # the caller went away, or the connection failed
        with contextlib.suppress(Exception):
            channel.close()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _stderr_to(channel: paramiko.Channel, fd: int) -> None:
    """The channel's stderr to ``fd`` (kept reading after ``fd`` failed, so the channel's
    window is not held by unread stderr)."""
    writable = True
    try:
        while True:
            data = channel.recv_stderr(_CHUNK)
            if not data:
                return
            while writable and data:
                try:
                    data = data[os.write(fd, data) :]
                except OSError:
                    writable = False
    except Exception:  # the connection failed
        return
    finally:
        os.close(fd)
