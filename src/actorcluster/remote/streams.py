"""Byte streams an agent session talks over: the :class:`ByteStream` protocol, and
:class:`PipeStream`, a local subprocess's pipes (the ``localhost`` runtime).

The SSH channel stream lives with the rest of paramiko, in
:class:`actorcluster.ssh.ChannelStream`. Both keep the tail of the agent's stderr, read
by the same thread that reads the frames (an unread stderr would stall the stream: an
SSH channel's window counts stderr too, and a full pipe blocks the agent), to report it
when the agent fails.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import subprocess
import threading
from typing import Protocol

from actorcluster._limits import Deadline

__all__ = ["ByteStream", "OutputTail", "PipeStream"]

_STDERR_KEEP = 64 * 1024


class ByteStream(Protocol):
    """A bidirectional byte stream to an agent."""

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end; TimeoutError after ``timeout`` s."""

    def sendall(self, data: bytes, timeout: float) -> None:
        """Write all of ``data``; OSError if the stream is gone, TimeoutError if it took
        nothing for ``timeout`` seconds (the stream is then unusable)."""

    def close(self) -> None:
        """Close both directions (the agent sees its stdin end), waiting briefly."""

    def abort(self) -> None:
        """Tear the stream down at once, from any thread, never blocking."""

    def stderr_text(self) -> str:
        """The tail of what the agent wrote to stderr so far."""

    def final_stderr(self, timeout: float) -> str:
        """The stderr tail once the agent's stderr ended (waiting up to ``timeout``):
        for the error of an agent that died while starting."""

    def release(self) -> None:
        """Free what is left once nobody reads any more (after :meth:`close`)."""


class OutputTail:
    """The last ``limit`` bytes of a stream of output chunks; thread-safe."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        """Keep ``data``, dropping the oldest chunks beyond the limit."""
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size > self._limit and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self, limit: int | None = None) -> str:
        """What is kept (its last ``limit`` characters), decoded leniently."""
        with self._lock:
            data = b"".join(self._chunks)
        text = data[-self._limit :].decode("utf-8", errors="replace")
        return text if limit is None else text[-limit:]


class PipeStream:
    """A local subprocess running the agent (the ``localhost`` runtime)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        self.process = process
        self._in = process.stdin.fileno()
        self._out = process.stdout.fileno()
        self._err: int | None = process.stderr.fileno()
        self._stderr = OutputTail(_STDERR_KEEP)
        os.set_blocking(self._in, False)

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """See :class:`ByteStream`; drains stderr on the way."""
        deadline = Deadline(timeout)
        while True:
            wait = deadline.timeout()
            watched = [self._out] if self._err is None else [self._out, self._err]
            ready, _, _ = select.select(watched, [], [], wait)
            if not ready:
                raise TimeoutError(f"no data from the agent within {timeout} s")
            if self._err is not None and self._err in ready:
                self._drain_stderr()
            if self._out in ready:
                return os.read(self._out, size)

    def _drain_stderr(self) -> None:
        assert self._err is not None
        data = os.read(self._err, 65536)
        if data:
            self._stderr.add(data)
        else:
            self._err = None  # ended; stop watching it

    def sendall(self, data: bytes, timeout: float) -> None:
        """See :class:`ByteStream`."""
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self._in], [], timeout)
            if not writable:
                raise TimeoutError(f"the agent took no data for {timeout} s")
            with contextlib.suppress(BlockingIOError):  # filled up since select said so
                view = view[os.write(self._in, view) :]

    def close(self) -> None:
        """Close the agent's stdin (it then cleans up and exits), then reap it."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.abort()

    def abort(self) -> None:
        """Kill the agent (its watchdog cleans up after it)."""
        with contextlib.suppress(OSError):
            self.process.kill()

    def release(self) -> None:
        """Reap the agent and close its pipes (after the reader ended); idempotent."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.abort()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def final_stderr(self, timeout: float) -> str:
        """See :class:`ByteStream`."""
        deadline = Deadline(timeout)
        while self._err is not None:
            wait = deadline.remaining()
            if wait <= 0 or not select.select([self._err], [], [], wait)[0]:
                break
            self._drain_stderr()
        return self._stderr.text()

    def stderr_text(self) -> str:
        """See :class:`ByteStream`."""
        return self._stderr.text()
