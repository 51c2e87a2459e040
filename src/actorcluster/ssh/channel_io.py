"""Faster channel I/O than paramiko's own, for the agent's channel and tunnels.

Sending: :func:`send_all` hands ``Channel.send`` one packet's worth at a time.
``Channel.sendall`` re-slices the rest of the data after every packet (a 1 MiB frame
sent in 32 KiB packets is copied 32 times over) and spins once the channel stops
taking data.

Receiving: a faster receive buffer.

paramiko buffers a channel's incoming data in a ``BufferedPipe`` built on
``array('B')``: every packet is copied in, and every read is sliced and copied out, and
with large packets the array's memory is given back and faulted in again each time.
Measured here, that alone cost about 1.9 s of CPU per GB with 256 KiB packets, as
much as decrypting. :class:`FastPipe` keeps the received ``bytes`` objects in a deque
instead: a read that takes everything returns them joined (or the one object as is).

It replaces ``channel.in_buffer`` before the relay reads the channel
(:func:`install_fast_pipe`). That touches paramiko internals (``Channel.lock``,
``Channel.in_buffer``, ``BufferedPipe._lock``, ``_buffer``, ``_closed``), so it is an
optimization only: if they are not as expected, the channel keeps paramiko's buffer.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from actorcluster._logging import get_logger

if TYPE_CHECKING:
    import threading

    import paramiko

__all__ = ["FastPipe", "install_fast_pipe", "send_all"]

_PACKET_OVERHEAD = 64  # what paramiko keeps free in a packet for the message header


def send_all(channel: paramiko.Channel, data: bytes) -> None:
    """Send all of ``data``, one packet's worth per ``Channel.send``.

    Raises:
        BrokenPipeError: the channel was closed before everything was sent.
    """
    send = channel.send
    step = max(1, channel.out_max_packet_size - _PACKET_OVERHEAD)
    offset, size = 0, len(data)
    if 0 < size <= step:  # one packet (a request, mostly): bytes, which paramiko takes as is
        offset = send(data)  # (a memoryview costs it two exceptions per packet)
        if not offset:
            raise BrokenPipeError("the channel was closed")
    view = memoryview(data)
    while offset < size:
        sent = send(view[offset : offset + step])  # type: ignore[arg-type]  # any buffer works
        if not sent:
            raise BrokenPipeError("the channel was closed")
        offset += sent


log = get_logger(__name__)


if TYPE_CHECKING:
    _Pipe = BufferedPipe[bytes]  # generic in the stubs only
else:
    _Pipe = BufferedPipe


class FastPipe(_Pipe):
    """A ``BufferedPipe`` holding the fed ``bytes`` objects themselves."""

    if TYPE_CHECKING:  # BufferedPipe's own state, which the stubs leave out
        _lock: threading.Lock
        _cv: threading.Condition
        _event: threading.Event | None
        _closed: bool

    def __init__(self) -> None:
        super().__init__()
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def feed(self, data: bytes) -> None:
        """Add ``data`` (kept, not copied) and wake the reader."""
        with self._lock:
            if self._event is not None:
                self._event.set()
            self._chunks.append(bytes(data) if not isinstance(data, bytes) else data)
            self._size += len(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        """Whether a read would return data at once."""
        with self._lock:
            return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        """Up to ``nbytes`` bytes; b"" once closed and drained.

        Raises:
            PipeTimeout: nothing came within ``timeout`` seconds.
        """
        with self._lock:
            self._wait(timeout)
            if self._size <= nbytes:
                return self._take_all()
            return self._take(nbytes)

    def empty(self) -> bytes:
        """Everything buffered, removed."""
        with self._lock:
            return self._take_all()

    def _wait(self, timeout: float | None) -> None:
        if self._size or self._closed:
            return
        if timeout == 0.0:
            raise PipeTimeout()
        while not self._size and not self._closed:
            then = time.time()
            self._cv.wait(timeout)
            if timeout is not None:
                timeout -= time.time() - then
                if timeout <= 0.0:
                    raise PipeTimeout()

    def _take_all(self) -> bytes:
        chunks = self._chunks
        out = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._event is not None and not self._closed:
            self._event.clear()
        return out

    def _take(self, nbytes: int) -> bytes:
        chunks, parts, left = self._chunks, [], nbytes
        while left:
            chunk = chunks[0]
            if len(chunk) <= left:
                parts.append(chunks.popleft())
                left -= len(chunk)
            else:
                parts.append(chunk[:left])
                chunks[0] = chunk[left:]
                left = 0
        self._size -= nbytes
        return b"".join(parts)


def install_fast_pipe(channel: paramiko.Channel) -> bool:
    """Give ``channel`` a :class:`FastPipe`, keeping what it received so far.

    Safe while paramiko's thread feeds the channel: the swap holds the channel's lock
    (which paramiko holds to close the buffer) and the old buffer's lock, moves the old
    buffer's data over, and makes any feed or close still headed for the old buffer
    go to the new one. Call it before anything reads the channel.

    Returns:
        Whether it was installed (False: paramiko's internals differ; nothing changed).
    """
    old: Any = channel.in_buffer
    if isinstance(old, FastPipe):
        return True
    if not all(hasattr(old, name) for name in ("_lock", "_buffer", "_closed")):
        log.debug("tunnel.fastpipe.unavailable", channel=channel.get_id())
        return False
    new = FastPipe()
    with channel.lock, old._lock:
        pending = bytes(old._buffer)
        del old._buffer[:]
        if pending:
            new.feed(pending)
        if old._closed:
            new.close()
        old._buffer_frombytes = new.feed
        old.close = new.close
        channel.in_buffer = new
    return True
