"""A running command's stdin, written from the client: :class:`CommandInput`.

:meth:`~actorcluster.remote.client.AgentClient.run_with_input` starts a command whose
stdin is fed by STDIN frames (see :mod:`actorcluster.remote.agent.inputs` for the
agent's side). They are data frames: numbered, kept until acknowledged and resent
after a reconnect, so input reaches the command once and in order across a dropped
connection. The agent answers each with how many bytes it wrote; a writer keeps at most
:data:`INPUT_WINDOW` bytes unanswered, so a command that reads slowly holds its writer
back instead of filling the agent's memory.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster.errors import AgentLostError, RequestTimeoutError
from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from actorcluster.remote.agent.frames import Frame
    from actorcluster.remote.session import AgentSession, Pending

__all__ = ["INPUT_CHUNK", "INPUT_WINDOW", "CommandInput"]

INPUT_CHUNK = 64 * 1024
"""Most bytes of input per STDIN frame."""
INPUT_WINDOW = 1024 * 1024
"""Most bytes of input sent and not yet written to the command by the agent."""


class CommandInput:
    """The stdin of a command started with ``run_with_input``: :meth:`write` its input
    (it arrives in order), :meth:`close` it for the command to see its end.

    Writes made after the command ended are dropped (``write`` returns False), as a
    closed pipe would take nothing.
    """

    def __init__(self, session: AgentSession) -> None:
        self._session = session
        self._condition = threading.Condition()
        self._pending: Pending | None = None
        self._unanswered = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self.ended else "open"
        return f"<CommandInput {self._session.host} {state} unanswered={self._unanswered}>"

    def _bind(self, pending: Pending) -> None:
        """Belong to the command ``pending`` (once it is submitted)."""
        self._pending = pending
        pending.add_done_callback(lambda _: self._wake())

    def _wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def _route(self, frame: Frame) -> None:
        """Take a STDIN_TAKEN frame (on the session's reader: quick)."""
        size = frame.payload.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            with self._condition:
                self._unanswered = max(0, self._unanswered - size)
                self._condition.notify_all()

    @property
    def ended(self) -> bool:
        """Whether the command ended (input is dropped from then on)."""
        return self._pending is None or self._pending.done()

    def write(self, data: bytes, timeout: float | None = None) -> bool:
        """Send ``data`` to the command's stdin, waiting while it holds
        :data:`INPUT_WINDOW` bytes it has not read yet.

        Returns:
            True once all of it was sent; False if the command ended first (the rest is
            dropped).

        Raises:
            RequestTimeoutError: the command took too little of it within ``timeout``.
            AgentLostError: the agent went away.
        """
        pending = self._pending
        assert pending is not None, "write() before the command was submitted"
        deadline = Deadline(timeout)
        view = memoryview(bytes(data))
        while view:
            chunk = bytes(view[:INPUT_CHUNK])
            if not self._wait_for_room(len(chunk), deadline):
                return False
            self._session.send(Kind.STDIN, pending.request_id, {"data": chunk})
            view = view[len(chunk) :]
        return True

    def _wait_for_room(self, size: int, deadline: Deadline) -> bool:
        """Count ``size`` bytes as sent once there is room; False if the command ended."""
        with self._condition:
            while not self.ended and self._unanswered + size > INPUT_WINDOW:
                deadline.check(
                    lambda: RequestTimeoutError(
                        self._session.host, "the command taking its input", deadline.seconds or 0.0
                    )
                )
                self._condition.wait(deadline.timeout())
            if self.ended:
                return False
            self._unanswered += size
            return True

    def close(self) -> None:
        """End the input: the command's stdin closes after what was written (again, or
        after the command ended, does nothing)."""
        pending = self._pending
        with self._condition:
            if self._closed or pending is None or pending.done():
                self._closed = True
                return
            self._closed = True
        with contextlib.suppress(AgentLostError):  # then the command fails with it anyway
            self._session.send(Kind.STDIN_EOF, pending.request_id, {})
