"""The command line in a real pseudo-terminal, as a user's terminal runs it.

:class:`Terminal` starts ``actorcluster ARGS...`` with a new pty as its controlling
terminal and its stdin, stdout and stderr: Ctrl-C typed into it is the
SIGINT the kernel sends the foreground process group, and a read on stdin is a read
on a terminal.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from cli_runner import CLI, cli_env

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Terminal"]

_TAKE_TERMINAL = (
    "import os, sys; os.close(os.open(os.ttyname(0), os.O_RDWR)); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Run first in the new session: opening its terminal makes it the controlling one (and
this process group the foreground one, which Ctrl-C signals); then the command line."""


class Terminal:
    """``actorcluster ARGS...`` in a pseudo-terminal; :attr:`seen` is what it printed."""

    def __init__(self, *args: str, ssh_config: Path | str | None = None) -> None:
        env = cli_env(ssh_config, TERM="xterm-256color", COLUMNS="120", LINES="40")
        leader, follower = pty.openpty()
        # A new session whose first open of the terminal makes it its controlling one
        # (pty.fork would fork this multi-threaded process: deprecated from 3.12).
        self.process = subprocess.Popen(
            [sys.executable, "-c", _TAKE_TERMINAL, *CLI, *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        self.fd = leader
        self.seen = bytearray()

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
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"still running after {timeout} s: {bytes(self.seen)!r}")
            self._read(min(0.1, max(0.0, deadline - time.monotonic())))
        while self._read(0.05):
            pass
        return self.process.returncode

    def close(self) -> None:
        """Kill it if it still runs; close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        os.close(self.fd)
