"""The agent's compiled modules, kept between processes in the user's cache folder.

Compiling and compressing the modules the second stage carries
(:func:`~actorcluster.remote.bootstrap.stage_two`) costs ~60 ms of CPU, paid by every
process that connects: a command line call, most of all. :func:`cached` keeps the
result in ``$XDG_CACHE_HOME/actorcluster`` (``~/.cache/actorcluster``), a folder of the
user's own (0700), one file per key: a hash of the sources and the interpreter's
version, so an upgrade or an edit writes a new one (the oldest beyond
:data:`KEPT` are removed then). A file is written whole under another name and renamed,
and carries the hash of its content, checked on reading; anything amiss (no home, a
read-only disk, a damaged file) means building it here, as without a cache. What hosts
run comes from there, so a file is used only where the folder and the file are the
user's own and nobody else may write them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["KEPT", "cache_dir", "cached"]

KEPT = 8
"""Files kept in the folder (the newest)."""
_PREFIX = "stage-"
_DIGEST = 32


def cache_dir() -> str:
    """The folder the files are kept in."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "actorcluster")


def cached(key: bytes, build: Callable[[], bytes]) -> bytes:
    """``build()``'s result for ``key`` (what it depends on besides this interpreter):
    read from the cache folder, else built and written there."""
    name = hashlib.sha256(b"%s\0%s" % (sys.version.encode(), key)).hexdigest()[:32]
    path = os.path.join(cache_dir(), f"{_PREFIX}{name}.bin")
    found = _read(path)
    if found is not None:
        return found
    data = build()
    with contextlib.suppress(OSError):
        _write(path, data)
    return data


def _ours(info: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(path: str) -> bytes | None:
    try:
        if not _ours(os.lstat(os.path.dirname(path))):
            return None
        with open(path, "rb") as file:
            if not _ours(os.fstat(file.fileno())):
                return None
            raw = file.read()
    except OSError:
        return None
    digest, data = raw[:_DIGEST], raw[_DIGEST:]
    return data if hashlib.sha256(data).digest() == digest else None


def _write(path: str, data: bytes) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, 0o700, exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(descriptor, "wb") as file:
            file.write(hashlib.sha256(data).digest() + data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    _prune(folder)


def _prune(folder: str) -> None:
    """Remove the files beyond the :data:`KEPT` newest."""
    entries = []
    for entry in os.scandir(folder):
        if entry.name.startswith(_PREFIX) and entry.name.endswith(".bin"):
            with contextlib.suppress(OSError):
                entries.append((entry.stat().st_mtime, entry.path))
    for _, stale in sorted(entries, reverse=True)[KEPT:]:
        with contextlib.suppress(OSError):
            os.unlink(stale)
