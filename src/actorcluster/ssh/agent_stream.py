"""An SSH session channel as the byte stream of an agent session.

:class:`ChannelStream` satisfies :class:`actorcluster.remote.streams.ByteStream`. Its
receive side uses the fast receive buffer (:mod:`~actorcluster.ssh.channel_io`), its
send side sends one packet's worth at a time and gives up when the channel took nothing
for the stream's timeout (the peer stopped reading: a partition, a stopped agent). The
agent's stderr is drained by the thread that reads the frames, a bounded tail kept.

Aborting never blocks: closing a channel sends a message, and on a connection whose
peer went silent (a partition: the socket's send buffer full, a sender stuck in it
holding paramiko's write lock) that send waits forever. So the close runs on a thread
of its own, and if it has not finished after :data:`CUT_AFTER` seconds the whole
connection is cut (its transport closed: the stuck sender fails, the threads end);
a reconnect replaces it.
"""

from __future__ import annotations

import contextlib
import threading
import time

import paramiko

from actorcluster._limits import Deadline
from actorcluster._workers import THREADS
from actorcluster.ssh.channel_io import install_fast_pipe, send_all

__all__ = ["ChannelStream"]

_STDERR_KEEP = 64 * 1024
CUT_AFTER = 2.0
"""Seconds an aborted channel's close may take before its connection is cut."""


class ChannelStream:
    """A session channel running an agent.

    Args:
        channel: the channel, its command already started.
        timeout: seconds a send may make no progress before it fails.
    """

    def __init__(self, channel: paramiko.Channel, timeout: float) -> None:
        install_fast_pipe(channel)
        channel.settimeout(timeout)
        self._channel = channel
        self._timeout = timeout
        self._stderr = bytearray()

    def __repr__(self) -> str:
        state = "closed" if self._channel.closed else "open"
        return f"<ChannelStream {self._channel.get_id()} {state}>"

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end; TimeoutError after ``timeout``
        seconds (the stream's own timeout when None). Drains stderr on the way."""
        channel = self._channel
        if timeout is not None:
            channel.settimeout(timeout)
        try:
            return channel.recv(size)
        except TimeoutError as exc:
            raise TimeoutError(
                f"no data from the agent within {timeout or self._timeout} s"
            ) from exc
        finally:
            if timeout is not None:
                channel.settimeout(self._timeout)
            if channel.recv_stderr_ready():
                self._take_stderr()

    def _take_stderr(self) -> None:
        with contextlib.suppress(OSError):
            self._stderr += self._channel.recv_stderr(65536)
            del self._stderr[:-_STDERR_KEEP]

    def sendall(self, data: bytes, timeout: float) -> None:
        """Send all of ``data``; TimeoutError when the channel took nothing for the
        stream's timeout; BrokenPipeError once it is closed (or the connection died
        under it: paramiko's EOFError and SSHException end here as well)."""
        if self._channel.closed:
            raise BrokenPipeError("the channel is closed")
        try:
            send_all(self._channel, data)
        except (EOFError, paramiko.SSHException) as exc:
            raise BrokenPipeError(f"the connection broke while sending: {exc!r}") from exc

    def close(self) -> None:
        """Close the channel (the agent sees its stdin end)."""
        self._channel.close()

    def abort(self) -> None:
        """Close the channel now, without waiting (see the module docstring)."""
        THREADS.start(_close_or_cut, self._channel, name="actorcluster-abort")

    def release(self) -> None:
        """Nothing to free: the channel is closed."""

    def stderr_text(self) -> str:
        """The stderr tail read so far."""
        if self._channel.recv_stderr_ready():
            self._take_stderr()
        return self._stderr.decode("utf-8", "replace")

    def final_stderr(self, timeout: float) -> str:
        """The stderr tail, read until it ends or ``timeout`` passes."""
        deadline = Deadline(timeout)
        channel = self._channel
        while not deadline.expired():
            if channel.recv_stderr_ready():
                self._take_stderr()
            elif channel.exit_status_ready() or channel.closed:
                break
            else:
                time.sleep(0.01)
        return self.stderr_text()


def _close_or_cut(channel: paramiko.Channel) -> None:
    """Close ``channel``; if that is stuck for :data:`CUT_AFTER` s, close its transport."""
    closed = threading.Event()

    def close() -> None:
        with contextlib.suppress(Exception):  # paramiko may raise anything mid-teardown
            channel.close()
        closed.set()

    THREADS.start(close, name="actorcluster-channel-close")
    if closed.wait(CUT_AFTER):
        return
    transport = channel.get_transport()
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()
