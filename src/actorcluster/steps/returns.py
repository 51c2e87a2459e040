"""A function's return value, checked against a memory budget before anyone loads it.

A return value arrives pickled (cloudpickle on the host) and is unpickled here when
``function_returns`` is read. Pickle amplifies: a 16 MiB run of ``EMPTY_SET`` opcodes
unpickles to 3.9 GB. So the value is first costed opcode by opcode, without building
anything, and refused with :class:`~actorcluster.errors.ReturnValueTooLargeError` when
what it would build exceeds the runtime's ``max_return_size`` (default
:data:`DEFAULT_MAX_RETURN_SIZE`). A value too short to reach the budget whatever its
opcodes is not scanned (every small return value).

The estimate is static: a value that calls a function while it loads (``REDUCE``, as
numpy arrays and most classes do) is costed by its arguments, not by what the function
allocates. Loading a host's return value runs code the host chose; it is as trusted as
the host (see ``docs/security.md``).
"""

from __future__ import annotations

from actorcluster._limits import MAX_RETURN_SIZE as DEFAULT_MAX_RETURN_SIZE
from actorcluster.errors import ReturnValueTooLargeError

__all__ = ["DEFAULT_MAX_RETURN_SIZE", "check_return", "estimated_size"]


_WORST_OPCODE = 232
"""The most one opcode without data can build (an empty set with its memo entry)."""
_COSTS = {
    "EMPTY_SET": 232,
    "FROZENSET": 232,
    "EMPTY_DICT": 72,
    "DICT": 72,
    "EMPTY_LIST": 64,
    "LIST": 64,
    "MEMOIZE": 8,
    "PUT": 8,
    "BINPUT": 8,
    "LONG_BINPUT": 8,
}
"""Bytes one opcode builds, where it is more or less than the default."""
_DEFAULT_COST = 40
_TEXT_COST = 57
"""A string or bytes object's overhead beyond its characters."""


def estimated_size(value: bytes, budget: int) -> int:
    """Bytes ``value`` would take once unpickled (an upper estimate for plain data;
    see the module docstring); the scan stops once past ``budget``."""
    if len(value) * _WORST_OPCODE <= budget:
        return len(value) * _WORST_OPCODE
    import pickletools  # here: only a large return value is scanned

    total = 0
    try:
        for opcode, argument, _ in pickletools.genops(value):
            if isinstance(argument, (str, bytes, bytearray)):
                total += _TEXT_COST + len(argument)
            else:
                total += _COSTS.get(opcode.name, _DEFAULT_COST)
            if total > budget:
                break
    except ValueError:  # not a pickle pickletools can read: unpickling will say why
        return len(value)
    return total


def check_return(value: bytes, budget: int, *, task: str, index: int, host: str) -> None:
    """Raise :class:`~actorcluster.errors.ReturnValueTooLargeError` if ``value``
    would take more than ``budget`` bytes once unpickled."""
    size = estimated_size(value, budget)
    if size > budget:
        raise ReturnValueTooLargeError(task, index, host, len(value), budget)
