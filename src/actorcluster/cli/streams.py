"""Where ``run`` writes its commands' output: stdout and stderr apart, as it comes.

With one host the bytes pass through unchanged. With several, each line is prefixed
with ``[host] `` (coloured on a terminal) and written whole, so lines of different hosts
never mix within a line; a last line without its newline gets one when its command
ends.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, TYPE_CHECKING

from actorcluster.cli.console import is_terminal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HostStreams"]

_COLOURS = (36, 33, 35, 32, 34, 31, 96, 93, 95, 92, 94, 91)
"""ANSI colours given to hosts in turn (cyan, yellow, magenta, green, blue, red, ...)."""


def _binary(stream: IO[str]) -> IO[bytes]:
    return stream.buffer if hasattr(stream, "buffer") else stream  # type: ignore[return-value]


class HostStreams:
    """The output of every host's command, to this process's stdout and stderr.

    Args:
        prefixed: prefix each line with its host (several hosts).
    """

    def __init__(self, prefixed: bool) -> None:
        self._prefixed = prefixed
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, int], bytes] = {}
        self._prefixes: dict[str, dict[int, bytes]] = {}

    def _prefix(self, host: str, fd: int) -> bytes:
        prefixes = self._prefixes.get(host)
        if prefixes is None:
            colour = _COLOURS[len(self._prefixes) % len(_COLOURS)]
            prefixes = {}
            for number, stream in ((1, sys.stdout), (2, sys.stderr)):
                text = f"[{host}] "
                if is_terminal(stream):
                    text = f"\x1b[{colour}m[{host}]\x1b[0m "
                prefixes[number] = text.encode()
            self._prefixes[host] = prefixes
        return prefixes[fd]

    def writer(self, host: str) -> Callable[[int, bytes], None]:
        """``on_output(fd, data)`` for ``host``'s command."""
        with self._lock:
            self._prefix(host, 1)  # colours follow the order hosts were given

        def write(fd: int, data: bytes) -> None:
            self.write(host, fd, data)

        return write

    def write(self, host: str, fd: int, data: bytes) -> None:
        """Write a piece of ``host``'s output (``fd`` 1 or 2).

        Raises:
            BrokenPipeError: the reader of stdout (or stderr) went away.
        """
        stream = _binary(sys.stdout if fd == 1 else sys.stderr)
        if not self._prefixed:
            with self._lock:
                stream.write(data)
                stream.flush()
            return
        with self._lock:
            lines = (self._partial.pop((host, fd), b"") + data).split(b"\n")
            if lines[-1]:
                self._partial[(host, fd)] = lines[-1]
            complete = lines[:-1]
            if complete:
                prefix = self._prefix(host, fd)
                stream.write(b"".join(prefix + line + b"\n" for line in complete))
                stream.flush()

    def finish(self, host: str) -> None:
        """``host``'s command ended: write what is left of its last lines."""
        with self._lock:
            for fd in (1, 2):
                rest = self._partial.pop((host, fd), b"")
                if rest:
                    stream = _binary(sys.stdout if fd == 1 else sys.stderr)
                    stream.write(self._prefix(host, fd) + rest + b"\n")
                    stream.flush()
