"""Environment variables checked where they are given, with an error saying which and
why, instead of failing later on the host or in the frame protocol.

A name must be non-empty and hold neither ``=`` nor NUL (the OS could not set it); a
value must hold no NUL; one variable (``NAME=value``) must fit Linux's limit on one
string handed to a program (:data:`MAX_VARIABLE`, 128 KiB), and all of them together
:data:`MAX_TOTAL` (the host's exec would fail past its own, smaller, limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actorcluster._limits import MAX_ENV_TOTAL as MAX_TOTAL
from actorcluster._limits import MAX_ENV_VARIABLE as MAX_VARIABLE
from actorcluster.errors import UsageError

__all__ = ["MAX_TOTAL", "MAX_VARIABLE", "checked_env"]


def checked_env(env_variables: Mapping[Any, Any]) -> dict[str, str]:
    """``env_variables`` as strings, checked (see the module docstring).

    Raises:
        UsageError: it is not a mapping, or a name or value cannot be set (names it).
    """
    if not isinstance(env_variables, Mapping):
        raise UsageError(f"env_variables must be a dict, not {type(env_variables).__name__}")
    env = {str(key): str(value) for key, value in env_variables.items()}
    total = 0
    for name, value in env.items():
        shown = repr(name[:60])
        if not name or "=" in name or "\0" in name:
            raise UsageError(
                f"environment variable name {shown} cannot be set: a name must be "
                "non-empty and hold no '=' or NUL character"
            )
        if "\0" in value:
            raise UsageError(f"environment variable {shown} holds a NUL character")
        size = len(name.encode("utf-8", "surrogateescape")) + 1
        size += len(value.encode("utf-8", "surrogateescape"))
        if size > MAX_VARIABLE:
            raise UsageError(
                f"environment variable {shown} takes {size} bytes, over the {MAX_VARIABLE} "
                "a program can be handed: send large data as a file (send_file) instead"
            )
        total += size + 1
    if total > MAX_TOTAL:
        raise UsageError(
            f"the environment variables take {total} bytes, over {MAX_TOTAL}: send large "
            "data as files (send_file) instead"
        )
    return env
