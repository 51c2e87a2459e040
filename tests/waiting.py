"""Bounded waiting for conditions no event announces (a process gone, a file there)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every 20 ms until it is true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        pause.wait(0.02)
