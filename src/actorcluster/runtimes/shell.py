"""A shell command's raw bytes, live, with stdin: :func:`run_shell`.

A :class:`~actorcluster.runtimes.RuntimeTask` decodes its output into a text log. A
command line that passes a command's output on (``actorcluster run``) needs it as the
command wrote it: bytes unchanged (a binary ``cat`` arrives intact), stdout and stderr
apart, and the caller's stdin fed to the command. :func:`run_shell` does that on a
runtime's agent, in its working directory and environment::

    command = run_shell(runtime, "gzip -c", on_output=write, stdin=sys.stdin.buffer)
    code = command.wait()  # the exit code; 128 + N when killed by signal N

``on_output(fd, data)`` runs on a thread of the command's own, in order, never on an
I/O thread: a slow consumer delays only this command. Its future resolves after the
last output was handed over. Cancelling (``command.cancel()`` or ``future.cancel()``)
kills the command's process group on the host.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster._workers import THREADS
from actorcluster.errors import (
    ActorClusterError,
    RequestCancelledError,
    TaskCancelledError,
    UsageError,
)
from actorcluster.futures import ActorFuture
from actorcluster.remote import INPUT_CHUNK

if TYPE_CHECKING:
    from collections.abc import Iterator

    from actorcluster.remote import Call, CommandInput
    from actorcluster.runtimes.runtime import Runtime

__all__ = ["OutputCallback", "ShellCommand", "run_shell"]

log = get_logger(__name__)

OutputCallback = Callable[[int, bytes], None]
"""``on_output(fd, data)``: 1 for stdout, 2 for stderr; the bytes as the host sent them."""

_DONE = (0, b"")
_INPUT_POLL = 0.2
"""Seconds between checks for the command's end while stdin has nothing to read."""


class ShellCommand:
    """A shell command running on a runtime (made by :func:`run_shell`).

    Attributes:
        future: resolves with the exit code (128 + N when killed by signal N) once the
            last output was handed over; fails with the error that ended it
            (:class:`~actorcluster.errors.TaskCancelledError` when cancelled, or what
            ``on_output`` raised, the command being cancelled then).
    """

    def __init__(self, host: str, command: str, on_output: OutputCallback | None) -> None:
        self.host = host
        """The runtime's host."""
        self.command = command
        """The command, as given."""
        self.future: ActorFuture[int] = ActorFuture(f"command {command!r} on {host}")
        self._on_output = on_output
        self._items: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self._call: Call[int] | None = None
        self._callback_error: BaseException | None = None
        self.future.set_canceller(self.cancel)

    def __repr__(self) -> str:
        return f"<ShellCommand {self.command!r} on {self.host} {self.future._state()}>"

    def _start(self, call: Call[int]) -> None:
        self._call = call
        THREADS.start(self._deliver, name=f"shell-{self.host}")
        call.add_done_callback(lambda _: self._items.put(_DONE))

    def _take(self, fd: int, data: bytes) -> None:
        """Output from the host (on the session's reader: only queued)."""
        self._items.put((fd, data))

    def cancel(self) -> None:
        """Stop the command: its process group on the host is killed."""
        if self._call is not None:
            self._call.cancel()

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, waiting up to ``timeout`` seconds (see :attr:`future`)."""
        return self.future.result(timeout)

    def _deliver(self) -> None:
        """Hand output to ``on_output`` in order; resolve the future at the end."""
        while True:
            fd, data = self._items.get()
            if (fd, data) == _DONE:
                break
            if self._on_output is None or self._callback_error is not None:
                continue
            try:
                self._on_output(fd, data)
            except BaseException as exc:  # the consumer's failure ends the command
                self._callback_error = exc
                self.cancel()
        self._resolve()

    def _resolve(self) -> None:
        call = self._call
        assert call is not None
        if self._callback_error is not None:
            self.future.fail(self._callback_error)
            return
        try:
            code = call.result(timeout=0)
        except RequestCancelledError:
            self.future.fail(TaskCancelledError(self.command, "cancelled", self.host))
        except ActorClusterError as error:
            self.future.fail(error)
        else:
            self.future.set(128 - code if code < 0 else code)


def _feed(source: IO[bytes], command_input: CommandInput, host: str) -> None:
    """Copy ``source`` to the command's stdin until its end (then close it) or the
    command's end, on a thread of its own.

    A source with a file descriptor (a terminal, a pipe) is read raw, after a selector
    said it has data, checking the command's end every :data:`_INPUT_POLL` s: the
    thread never sits inside a buffered read, which at interpreter exit would abort the
    process (``Fatal Python error: _enter_buffered_busy``), and ends with the command.
    """
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream: never blocks
        fd = None
    read = (lambda size: os.read(fd, size)) if fd is not None else _reader(source)
    try:
        with _ready_to_read(fd) as ready:
            while not command_input.ended:
                if not ready():
                    continue
                data = read(INPUT_CHUNK)
                if not data:
                    break
                if not command_input.write(data):
                    return
        command_input.close()
    except (OSError, ValueError, ActorClusterError) as exc:  # the command's end says the rest
        log.debug("shell.input.stopped", host=host, error=repr(exc))


def _reader(source: IO[bytes]) -> Callable[[int], bytes]:
    read: Callable[[int], bytes] = getattr(source, "read1", None) or source.read
    return read


@contextlib.contextmanager
def _ready_to_read(fd: int | None) -> Iterator[Callable[[], bool]]:
    """``ready()``: whether ``fd`` has data (or its end) to read, waiting up to
    :data:`_INPUT_POLL` s; always True where no selector can watch it (no descriptor,
    a regular file, ``/dev/null``: reading those never blocks)."""
    if fd is None:
        yield lambda: True
        return
    selector = selectors.DefaultSelector()
    try:
        selector.register(fd, selectors.EVENT_READ)
    except (OSError, ValueError):
        selector.close()
        yield lambda: True
        return
    with selector:
        yield lambda: bool(selector.select(_INPUT_POLL))


def run_shell(
    runtime: Runtime,
    command: str,
    *,
    on_output: OutputCallback | None = None,
    stdin: IO[bytes] | None = None,
) -> ShellCommand:
    """Start ``command`` on ``runtime`` through the host's shell, in the runtime's
    working directory and environment; returns at once.

    Args:
        runtime: where it runs.
        command: shell text, as for :meth:`RuntimeTask.run_command`.
        on_output: ``on_output(fd, data)`` for each piece of output, in order, on a
            thread of the command's own (1 stdout, 2 stderr); None discards it.
        stdin: a binary stream copied to the command's stdin until its end (read on a
            thread of its own); None: the command reads an empty stdin.

    Raises:
        UsageError: ``command`` is not a string, or the runtime was cleaned up.
        HostUnreachableError: the host is down and did not come back in time.
    """
    if not isinstance(command, str):
        raise UsageError(f"command must be a string, not {type(command).__name__}")
    client = runtime._handle.client()
    shell = ShellCommand(runtime.host, command, on_output)
    env, cwd = runtime.env_variables, runtime.working_dir
    if stdin is None:
        shell._start(client.run(command, env=env, cwd=cwd, on_output=shell._take))
        return shell
    call, command_input = client.run_with_input(command, env=env, cwd=cwd, on_output=shell._take)
    shell._start(call)
    THREADS.start(_feed, stdin, command_input, runtime.host, name=f"shell-input-{runtime.host}")
    return shell
