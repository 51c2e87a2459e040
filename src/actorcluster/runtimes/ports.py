"""Port numbers as the API takes them."""

from __future__ import annotations

from typing import Any

from actorcluster.errors import UsageError

__all__ = ["check_port"]


def check_port(port: Any, name: str = "port") -> int:
    """``port`` if it is an int in 1..65535 (bools are not ports).

    Raises:
        UsageError: it is not; the message names the argument and the value.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError(f"{name} must be an integer in 1..65535, not {port!r}")
    return port
