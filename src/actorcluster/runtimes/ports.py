"""Port numbers as the API takes them."""

from __future__ import annotations

from typing import Any

from actorcluster.errors import UsageError

__all__ = ["check_port"]


def check_port(port: Any, name: str = "port") -> int:
    """``port`` as an int, if it is one in 1..65535 or a string of one (``"47012"``, as
    lazycluster took them); bools are not ports.

    Raises:
        UsageError: it is not; the message names the argument and the value.
    """
    number = port
    if isinstance(port, str) and port.strip().isdecimal() and port.strip().isascii():
        number = int(port.strip())
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 65536:
        raise UsageError(f"{name} must be an integer in 1..65535, not {port!r}")
    return number
