"""Input for running commands: STDIN frames written to a command's stdin, in order.

Stdlib only (see the package docstring). A RUN with ``stdin: True`` gets a
:class:`CommandInput` when its frame is read, before its command starts, so STDIN
frames that follow at once are kept, not lost. The frame-reading thread only queues
them (it never blocks on a pipe); a thread of the input's own writes them to the
command's stdin and answers each with STDIN_TAKEN, which is the client's credit: it
keeps at most a window of input unanswered, so a command that reads slowly (or not at
all) holds the client back, not the agent's memory. STDIN_EOF closes the pipe once
everything before it is written. A command that closed its stdin (``head -1``) has the
rest dropped, still answered, so its client never waits on it. When the command ends,
input still queued is dropped and the pipe closed.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import threading
from typing import TYPE_CHECKING

from . import frames

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["CommandInput", "Inputs"]

Kind = frames.Kind

_POLL = 0.2
"""Seconds between checks for the command's end while its stdin is full."""
_END = b""


class CommandInput:
    """One command's stdin, fed from STDIN frames by a writer thread.

    Args:
        hub: where STDIN_TAKEN frames go.
        request_id: the RUN's request id.
    """

    def __init__(self, hub: Hub, request_id: int) -> None:
        self._hub = hub
        self._request_id = request_id
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._ended = threading.Event()
        self._broken = False

    def put(self, data: bytes) -> None:
        """Queue a chunk of input (on the reading thread: never blocks)."""
        if data:
            self._queue.put(bytes(data))

    def end(self) -> None:
        """The input is complete: close the command's stdin after what is queued."""
        self._queue.put(_END)

    def attach(self, fd: int) -> None:
        """Start writing to ``fd`` (the command's stdin; closed by the writer)."""
        os.set_blocking(fd, False)
        threading.Thread(
            target=self._write_loop, args=(fd,), name=f"agent-stdin-{self._request_id}", daemon=True
        ).start()

    def stop(self) -> None:
        """The command ended: drop what is queued, close its stdin."""
        self._ended.set()
        self._queue.put(None)

    def _write_loop(self, fd: int) -> None:
        try:
            while not self._ended.is_set():
                data = self._queue.get()
                if data is None or data == _END:
                    return
                if not self._broken:
                    self._broken = not self._write_all(fd, data)
                self._hub.emit(self._request_id, Kind.STDIN_TAKEN, {"size": len(data)})
        finally:
            os.close(fd)

    def _write_all(self, fd: int, data: bytes) -> bool:
        """Write ``data`` while the command lives; False once its stdin is closed."""
        view = memoryview(data)
        while view and not self._ended.is_set():
            try:
                _, writable, _ = select.select([], [fd], [], _POLL)
                if writable:
                    view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF):
                    return False
                raise
        return True


class Inputs:
    """The inputs of the running commands that take one, by request id."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._inputs: dict[int, CommandInput] = {}

    def open(self, request_id: int) -> None:
        """Make an input for RUN ``request_id`` (before its command starts)."""
        with self._lock:
            self._inputs[request_id] = CommandInput(self._hub, request_id)

    def get(self, request_id: int) -> CommandInput | None:
        """The input of ``request_id``; None if it has none (or it ended)."""
        with self._lock:
            return self._inputs.get(request_id)

    def data(self, request_id: int, payload: dict[str, object]) -> None:
        """STDIN {data}: queue it for the command; dropped if it ended already."""
        command_input = self.get(request_id)
        data = payload.get("data")
        if command_input is not None and isinstance(data, bytes):
            command_input.put(data)

    def eof(self, request_id: int) -> None:
        """STDIN_EOF: the command's stdin closes after what came before."""
        command_input = self.get(request_id)
        if command_input is not None:
            command_input.end()

    def close(self, request_id: int) -> None:
        """The command ended (or never started): forget its input, stop its writer."""
        with self._lock:
            command_input = self._inputs.pop(request_id, None)
        if command_input is not None:
            command_input.stop()
