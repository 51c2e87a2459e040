"""``actorcluster run --json``: each host's outcome as one JSON object (a line of
stdout), printed as the host's command ends."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["JsonResults"]


class JsonResults:
    """Collects each host's output; prints ``{"host", "exit_code", "stdout", "stderr",
    "seconds"}`` (and ``"error"`` for a host that failed) per host when it ends. Output
    is decoded as UTF-8, undecodable bytes replaced; ``seconds`` is the command's time
    (0 for a host where it never started)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._output: dict[str, dict[int, bytearray]] = {}
        self._lock = threading.Lock()

    def writer(self, host: str) -> Callable[[int, bytes], None]:
        """The ``on_output(fd, data)`` of ``host``'s command."""
        output = self._output.setdefault(host, {1: bytearray(), 2: bytearray()})
        self._started[host] = time.monotonic()

        def write(fd: int, data: bytes) -> None:
            output[2 if fd == 2 else 1] += data

        return write

    def finish(self, host: str) -> None:
        """``host``'s command ended (its object follows with its code)."""

    def exited(self, host: str, code: int) -> None:
        """Print ``host``'s object: its command exited with ``code``."""
        self._print(host, code, None)

    def failed(self, host: str, problem: BaseException, code: int) -> None:
        """Print ``host``'s object: it failed (unreachable, say) with ``problem``."""
        self._print(host, code, str(problem))

    def _print(self, host: str, code: int, problem: str | None) -> None:
        output = self._output.get(host, {})
        record: dict[str, object] = {
            "host": host,
            "exit_code": code,
            "stdout": bytes(output.get(1, b"")).decode("utf-8", "replace"),
            "stderr": bytes(output.get(2, b"")).decode("utf-8", "replace"),
            "seconds": round(time.monotonic() - self._started.get(host, time.monotonic()), 3),
        }
        if problem is not None:
            record["error"] = problem
        with self._lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
