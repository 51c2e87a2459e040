"""Byte streams the agent client talks over: an SSH channel or a local subprocess's pipes.

Each stream also drains the agent's stderr into a bounded buffer, both to report it
when the agent fails to start and because an unread stderr can stall the stream (an
SSH channel's window counts stderr too; a full pipe blocks the agent).
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import subprocess
import threading
from typing import TYPE_CHECKING, Protocol

from actorcluster.ssh.channel_io import install_fast_pipe, send_all

if TYPE_CHECKING:
    from collections.abc import Callable

    import paramiko

__all__ = ["ByteStream", "ChannelStream", "PipeStream"]

_STDERR_KEEP = 64 * 1024


class ByteStream(Protocol):
    """A bidirectional byte stream to an agent."""

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end; TimeoutError after ``timeout`` s."""

    def sendall(self, data: bytes) -> None:
        """Write all of ``data``; OSError if the stream is gone."""

    def close(self) -> None:
        """Close both directions (the agent sees its stdin end)."""

    def stderr_text(self) -> str:
        """The tail of what the agent wrote to stderr so far."""

    def final_stderr(self, timeout: float) -> str:
        """The stderr tail once the agent's stderr ended (waiting up to ``timeout``):
        for the error of an agent that died while starting."""

    def release(self) -> None:
        """Free what is left once nobody reads any more (after :meth:`close`)."""


class _StderrTail:
    """A bounded buffer of the latest stderr bytes."""

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size > _STDERR_KEEP and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")


def _drain(read: Callable[[int], bytes], tail: _StderrTail) -> None:
    """Read until the end (or an error) into ``tail``."""
    while True:
        try:
            data = read(65536)
        except OSError:
            return
        if not data:
            return
        tail.add(data)


class ChannelStream:
    """An SSH session channel running the agent."""

    def __init__(self, channel: paramiko.Channel) -> None:
        install_fast_pipe(channel)
        self._channel = channel
        self._stderr = _StderrTail()
        self._drainer = threading.Thread(
            target=self._drain_stderr, name="actorcluster-agent-stderr", daemon=True
        )
        self._drainer.start()

    def _drain_stderr(self) -> None:
        _drain(self._channel.recv_stderr, self._stderr)

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """See :class:`ByteStream`."""
        self._channel.settimeout(timeout)
        try:
            return self._channel.recv(size)
        except TimeoutError as exc:
            raise TimeoutError(f"no data from the agent within {timeout} s") from exc

    def sendall(self, data: bytes) -> None:
        """See :class:`ByteStream`."""
        if self._channel.closed:
            raise OSError("channel is closed")
        send_all(self._channel, data)

    def close(self) -> None:
        """See :class:`ByteStream`."""
        self._channel.close()

    def release(self) -> None:
        """See :class:`ByteStream`."""

    def stderr_text(self) -> str:
        """See :class:`ByteStream`."""
        return self._stderr.text()

    def final_stderr(self, timeout: float) -> str:
        """See :class:`ByteStream`."""
        self._drainer.join(timeout)
        return self._stderr.text()

    def exit_status(self) -> int | None:
        """The remote command's exit status, when it has exited."""
        if self._channel.exit_status_ready():
            return self._channel.recv_exit_status()
        return None


class PipeStream:
    """A local subprocess running the agent (the ``localhost`` runtime)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        self.process = process
        self._in = process.stdin.fileno()
        self._out = process.stdout.fileno()
        self._stderr = _StderrTail()
        self._write_lock = threading.Lock()
        self._drainer = threading.Thread(
            target=self._drain_stderr, name="actorcluster-agent-stderr", daemon=True
        )
        self._drainer.start()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        _drain(lambda size: os.read(fd, size), self._stderr)

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """See :class:`ByteStream`."""
        if timeout is not None:
            ready, _, _ = select.select([self._out], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no data from the agent within {timeout} s")
        return os.read(self._out, size)

    def sendall(self, data: bytes) -> None:
        """See :class:`ByteStream`."""
        view = memoryview(data)
        while view:
            written = os.write(self._in, view)
            view = view[written:]

    def close(self) -> None:
        """Close the agent's stdin (it then cleans up and exits), then reap it."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def release(self) -> None:
        """Close the agent's stdout and stderr pipes (after the readers ended)."""
        self._drainer.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def final_stderr(self, timeout: float) -> str:
        """See :class:`ByteStream`."""
        self._drainer.join(timeout)
        return self._stderr.text()

    def stderr_text(self) -> str:
        """See :class:`ByteStream`."""
        return self._stderr.text()
