"""What the agent has to say to its client, kept until the client has it.

Stdlib only (see the package docstring). Data frames (replies, output, downloads) are
numbered in the order they are put and kept until the client acknowledges them, so
that after a reconnect the ones it missed are sent again (:meth:`Outbox.rewind`).
Control frames (PONG, ACK, ATTACHED) go out once, before any data frame waiting. The
frames kept are bounded: output and download chunks wait for room (:meth:`put_data`
with ``flow``), which stops a command's output pump and so the command itself while
its client is away or slow, instead of filling the agent's memory.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["WINDOW", "Outbox"]

WINDOW = 16 * 1024 * 1024
"""Bytes of unacknowledged data frames past which output and downloads wait."""


class Outbox:
    """Frames waiting to be written, and data frames kept until acknowledged."""

    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._condition = threading.Condition()
        self._control: collections.deque[bytes] = collections.deque()
        self._kept: collections.deque[tuple[int, bytes]] = collections.deque()
        self._next = 1
        """The number the next data frame gets."""
        self._cursor = 1
        """The number of the next data frame to write."""
        self._kept_bytes = 0
        self._closed = False

    @property
    def sent(self) -> int:
        """How many data frames were put so far."""
        return self._next - 1

    def put_control(self, data: bytes) -> None:
        """Queue a control frame (written before data frames that wait)."""
        with self._condition:
            self._control.append(data)
            self._condition.notify_all()

    def put_data(self, data: bytes, *, flow: bool = False) -> bool:
        """Queue a data frame and keep it until acknowledged; with ``flow``, first wait
        while the frames kept are over the window. False if the outbox was closed."""
        with self._condition:
            if flow:
                while self._kept_bytes > self._window and not self._closed:
                    self._condition.wait()
            if self._closed:
                return False
            self._kept.append((self._next, data))
            self._next += 1
            self._kept_bytes += len(data)
            self._condition.notify_all()
            return True

    def acknowledge(self, received: int) -> None:
        """The client has the first ``received`` data frames: forget them."""
        with self._condition:
            kept = self._kept
            while kept and kept[0][0] <= received:
                self._kept_bytes -= len(kept.popleft()[1])
            self._condition.notify_all()

    def rewind(self, received: int) -> None:
        """A new stream: drop stale control frames, write again from the first data
        frame the client did not receive."""
        self.acknowledge(received)
        with self._condition:
            self._control.clear()
            self._cursor = received + 1
            self._condition.notify_all()

    def take(self, timeout: float) -> bytes | None:
        """The next frame to write (control frames first), waiting up to ``timeout``;
        None if there was none (or the outbox closed)."""
        with self._condition:
            if not self._control and self._cursor >= self._next and not self._closed:
                self._condition.wait(timeout)
            if self._control:
                return self._control.popleft()
            if not self._kept:
                self._cursor = self._next  # everything was acknowledged
            elif self._cursor < self._next:
                first = self._kept[0][0]
                index = self._cursor - first
                if index < 0:  # acknowledged meanwhile (a rewind): skip ahead
                    self._cursor, index = first, 0
                self._cursor += 1
                return self._kept[index][1]
            return None

    def close(self) -> None:
        """Wake every waiter; nothing more is put."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
