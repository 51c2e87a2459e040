"""FS: directory and path operations on the agent's host.

Stdlib only (see the package docstring). Every path is a literal string, made absolute against
the working directory after ``~`` expansion, and never passed through a shell. An
operation that fails answers ERROR {type: the exception's class name, message}.

Ops (the FS body's ``op`` field), each answering RESULT {value}:

- ``mkdir`` {path, mode?}: create with parents, existing is fine -> absolute path.
- ``rmtree`` {path}: remove a folder (or a file) -> whether everything is gone;
  False for a missing path.
- ``mkdtemp`` {prefix?, dir?, temporary}: a fresh private folder -> its path;
  temporary ones are removed when the agent exits.
- ``stat`` {path}: None if missing, else {is_dir, size, mode}.
- ``which`` {names, env?}: {name: absolute path or None}, searched in the PATH of the
  agent's environment updated with ``env``.
- ``abspath`` {path}: the absolute form of ``path``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from typing import TYPE_CHECKING, Any

from . import frames

if TYPE_CHECKING:
    from collections.abc import Callable

    from .hub import Hub

__all__ = ["OPS", "fs_request"]

Kind = frames.Kind


def _optional(payload: dict[str, Any], name: str, kind: type) -> Any:
    """``payload[name]`` if it is a ``kind`` or None, else TypeError."""
    value = payload.get(name)
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _mkdir(hub: Hub, payload: dict[str, Any]) -> str:
    """Create ``path`` with its parents; ``mode`` applies to the folder it creates."""
    path = hub.resolve(payload.get("path"))
    mode = _optional(payload, "mode", int)
    created = not os.path.isdir(path)
    os.makedirs(path, 0o777 if mode is None else mode, exist_ok=True)
    if created and mode is not None:
        os.chmod(path, mode)  # not narrowed by the umask: the caller asked for it
    return path


def _rmtree(hub: Hub, payload: dict[str, Any]) -> bool:
    """Remove ``path`` (folder, file or link); whether nothing is left of it."""
    path = hub.resolve(payload.get("path"))
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            return False
    return not os.path.lexists(path)


def _mkdtemp(hub: Hub, payload: dict[str, Any]) -> str:
    """A fresh folder (mode 0700) under ``dir`` or the system's temporary folder."""
    prefix = _optional(payload, "prefix", str)
    parent = _optional(payload, "dir", str)
    path = tempfile.mkdtemp(
        prefix="actorcluster-" if prefix is None else prefix,
        dir=None if parent is None else hub.resolve(parent),
    )
    if payload.get("temporary"):
        hub.add_temp_dir(path)
    return os.path.abspath(path)


def _stat(hub: Hub, payload: dict[str, Any]) -> dict[str, Any] | None:
    """What ``path`` is (following links), or None if it does not exist."""
    path = hub.resolve(payload.get("path"))
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return {
        "is_dir": stat.S_ISDIR(info.st_mode),
        "size": info.st_size,
        "mode": stat.S_IMODE(info.st_mode),
    }


def _which(hub: Hub, payload: dict[str, Any]) -> dict[str, str | None]:
    """Where each of ``names`` is found on the request environment's PATH."""
    names = payload.get("names")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise TypeError("'names' must be a list of strings")
    search = hub.environment(payload.get("env")).get("PATH", os.defpath)
    found: dict[str, str | None] = {}
    for name in names:
        path = shutil.which(name, path=search) if name else None
        found[name] = None if path is None else hub.resolve(path)
    return found


def _abspath(hub: Hub, payload: dict[str, Any]) -> str:
    """``path`` made absolute against the working directory."""
    return hub.resolve(payload.get("path"))


OPS: dict[str, Callable[[Hub, dict[str, Any]], Any]] = {
    "mkdir": _mkdir,
    "rmtree": _rmtree,
    "mkdtemp": _mkdtemp,
    "stat": _stat,
    "which": _which,
    "abspath": _abspath,
}
"""Every FS op by name."""


def fs_request(hub: Hub, request_id: int, payload: dict[str, Any]) -> None:
    """Run one FS request and answer RESULT {value}; errors propagate to the caller."""
    op = payload.get("op")
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise ValueError(f"unknown FS op {op!r}; expected one of {sorted(OPS)}")
    hub.finish(request_id, Kind.RESULT, {"value": handler(hub, payload)})
