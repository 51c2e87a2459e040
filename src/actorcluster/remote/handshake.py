"""The first contact on a new stream to an agent: the ready marker, then its first frame.

A user's shell may print before the agent starts (banners, ``conda activate``
chatter): :func:`await_marker` reads past it to the marker the agent writes first (and
answers a second stage's request for the modules' sources); :class:`Prefilled` hands
the frame reader what came after the marker, then the stream, every read bounded by the
handshake's :class:`~actorcluster._limits.Deadline` (:func:`read_first`). Used by
:meth:`AgentSession.start <actorcluster.remote.session.AgentSession.start>` and
``reattach``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.remote.agent.frames import READY_MARKER, Frame, FrameReader
from actorcluster.remote.bootstrap import SOURCES_REQUEST

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster._limits import Deadline
    from actorcluster.remote.streams import ByteStream

__all__ = ["Prefilled", "await_marker", "read_first"]

log = get_logger(__name__)

_NOISE_LIMIT = 64 * 1024
"""Bytes of what a host prints before the marker that are kept while waiting for it."""


def await_marker(
    stream: ByteStream, deadline: Deadline, host: str, sources: Callable[[], bytes] | None = None
) -> bytes:
    """Read up to the agent's ready marker; return what came after it. Answer a request
    for the sources (a host of another Python version) with ``sources()``."""
    seen = b""
    while READY_MARKER not in seen:
        if sources is not None and SOURCES_REQUEST in seen:
            seen = seen.replace(SOURCES_REQUEST, b"", 1)
            stream.sendall(sources(), deadline.remaining(0.01))
            sources = None
            continue
        if deadline.expired():
            printed = f"; the host printed {seen[-2000:]!r}" if seen.strip() else ""
            raise TimeoutError(f"the agent's ready marker did not arrive in time{printed}")
        data = stream.recv(65536, timeout=deadline.remaining())
        if not data:
            ended = f"the host closed the stream before the agent started: {seen[-2000:]!r}"
            raise OSError(ended)
        seen += data
        if len(seen) > _NOISE_LIMIT and READY_MARKER not in seen:
            seen = seen[-len(READY_MARKER) - 4096 :]
    noise, _, rest = seen.partition(READY_MARKER)
    if noise.strip():
        log.info("agent.noise", host=host, noise=noise[-500:].decode("utf-8", "replace"))
    return rest


def read_first(reader: FrameReader, source: Prefilled, deadline: Deadline) -> Frame | None:
    """The first frame, within the deadline (however it is trickled)."""
    source.deadline = deadline
    try:
        return reader.read_frame()
    finally:
        source.deadline = None


class Prefilled:
    """A recv function that first returns bytes already read past the ready marker."""

    def __init__(self, leftover: bytes, stream: ByteStream) -> None:
        self._leftover = leftover
        self._stream = stream
        self.deadline: Deadline | None = None
        """While set, every read ends by then (a byte at a time cannot stretch it)."""

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: the leftover first, then the stream's (bounded while
        :attr:`deadline` is set)."""
        if self._leftover:
            data, self._leftover = self._leftover[:size], self._leftover[size:]
            return data
        if self.deadline is None:
            return self._stream.recv(size, timeout=None)
        self.deadline.check(lambda: TimeoutError("the agent's first frame did not arrive in time"))
        return self._stream.recv(size, timeout=self.deadline.remaining())
