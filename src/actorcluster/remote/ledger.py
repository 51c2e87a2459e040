"""The session ledger: what the client sent and received on an agent session, numbered,
kept until the agent acknowledges it, so a re-attach resends exactly what was missed.

Both ends number their data frames (every frame but the stream's own: PING, PONG, ACK,
ATTACH, ATTACHED, CLOSE, HELLO). The client keeps each data frame it sent until the
agent says (in an ACK, a PONG or ATTACHED) how many it has; it counts those it received
and tells the agent every :data:`ACK_EVERY` bytes. After a reconnect the frames still
kept are sent again, in order: nothing is lost and nothing runs twice. The agent's
side is :mod:`actorcluster.remote.agent.links`. How frames travel (the stream, reading,
heartbeats) is :mod:`actorcluster.remote.session`'s: this module only keeps the books.
"""

from __future__ import annotations

import collections

__all__ = ["ACK_EVERY", "WINDOW", "SessionLedger"]

WINDOW = 16 * 1024 * 1024
"""Bytes of unacknowledged frames past which a sender waits for the agent."""
ACK_EVERY = 1024 * 1024
"""Bytes of data frames received between two ACKs to the agent."""
_FRAME_OVERHEAD = 64
"""Bytes a received frame counts toward :data:`ACK_EVERY` beside its data."""


class SessionLedger:
    """The books of one agent session: data frames sent and not yet acknowledged, and
    how many the agent sent us.

    Not locked: the session calls the sending half with its lock held and the receiving
    half from its one reader thread.
    """

    __slots__ = ("_kept", "_unacked_bytes", "kept_bytes", "received", "sent")

    def __init__(self) -> None:
        self._kept: collections.deque[tuple[int, bytes]] = collections.deque()
        self.kept_bytes = 0
        """Bytes of the frames kept (sent, not yet acknowledged)."""
        self.sent = 0
        """Data frames sent so far (the number of the last one)."""
        self.received = 0
        """Data frames received so far (what an ACK or ATTACH tells the agent)."""
        self._unacked_bytes = 0

    def __repr__(self) -> str:
        return (
            f"<SessionLedger sent={self.sent} kept={len(self._kept)} "
            f"({self.kept_bytes} bytes) received={self.received}>"
        )

    @property
    def full(self) -> bool:
        """Whether more than :data:`WINDOW` bytes wait for the agent's acknowledgement."""
        return self.kept_bytes > WINDOW

    def keep(self, data: bytes) -> None:
        """Number a data frame just sent (or to be sent on re-attach) and keep it."""
        self.sent += 1
        self._kept.append((self.sent, data))
        self.kept_bytes += len(data)

    def forget_acknowledged(self, received: int) -> None:
        """The agent has the first ``received`` data frames: stop keeping them."""
        kept = self._kept
        while kept and kept[0][0] <= received:
            self.kept_bytes -= len(kept.popleft()[1])

    def unacknowledged(self) -> list[bytes]:
        """The frames kept, in order: what a re-attach sends again."""
        return [data for _, data in self._kept]

    def after(self, number: int) -> list[bytes]:
        """The frames kept that were numbered after ``number``, in order."""
        return [data for sent, data in self._kept if sent > number]

    def count_received(self, data_bytes: int) -> bool:
        """Count a data frame received (``data_bytes`` of data in it); whether an ACK is
        due now (every :data:`ACK_EVERY` bytes)."""
        self.received += 1
        self._unacked_bytes += data_bytes + _FRAME_OVERHEAD
        if self._unacked_bytes < ACK_EVERY:
            return False
        self._unacked_bytes = 0
        return True

    def clear(self) -> None:
        """Forget every kept frame (the session is over)."""
        self._kept.clear()
        self.kept_bytes = 0
