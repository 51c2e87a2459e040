"""Consecutive ports that nothing on this machine holds now (below the ephemeral range,
where a test's cluster or group looks for its ports)."""

from __future__ import annotations

import socket

__all__ = ["bindable", "free_block"]


def bindable(port: int) -> bool:
    """Whether ``port`` can be bound on every address right now."""
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_block(count: int, start: int, stop: int = 40000) -> list[int]:
    """The first ``count`` consecutive bindable ports from ``start`` (below ``stop``)."""
    port = start
    while port < stop:
        block = list(range(port, port + count))
        if all(bindable(p) for p in block):
            return block
        port += count
    raise AssertionError("no free block of ports")
