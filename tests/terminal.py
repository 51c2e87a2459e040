"""The command line in a real pseudo-terminal, as a user's terminal runs it.

:class:`Terminal` starts ``actorcluster ARGS...`` with a new pty as its controlling
terminal and its stdin, stdout and stderr (``pty.fork``): Ctrl-C typed into it is the
SIGINT the kernel sends the foreground process group, and a read on stdin is a read
on a terminal.
"""

from __future__ import annotations

import os
import pty
import select
import time
from typing import TYPE_CHECKING

from cli_runner import CLI, cli_env

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Terminal"]


class Terminal:
    """``actorcluster ARGS...`` in a pseudo-terminal; :attr:`seen` is what it printed."""

    def __init__(self, *args: str, ssh_config: Path | str | None = None) -> None:
        env = cli_env(ssh_config, TERM="xterm-256color", COLUMNS="120", LINES="40")
        argv = [*CLI, *args]
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec, never return into pytest
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.seen = bytearray()
        self._status: int | None = None

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``); False at the terminal's end."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: every process holding the follower side is gone
            return False
        self.seen += chunk
        return bool(chunk)

    def expect(self, text: bytes, timeout: float = 60.0) -> None:
        """Wait until ``text`` was printed."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(
                    f"{text!r} not printed; the terminal shows {bytes(self.seen)!r}"
                )

    def type(self, data: bytes) -> None:
        """Type ``data`` (``b"\\x03"``: Ctrl-C)."""
        os.write(self.fd, data)

    def wait(self, timeout: float = 60.0) -> int:
        """The exit code (-N: killed by signal N), reading its output to the end."""
        deadline = time.monotonic() + timeout
        while self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = os.waitstatus_to_exitcode(status)
                while self._read(0.05):
                    pass
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
                raise AssertionError(f"still running after {timeout} s: {bytes(self.seen)!r}")
            self._read(min(0.1, deadline - time.monotonic()))
        return self._status

    def close(self) -> None:
        """Kill it if it still runs; close the terminal."""
        if self._status is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self._status = -9
        os.close(self.fd)
