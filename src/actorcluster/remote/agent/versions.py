"""A module's version, found the same way on both ends (stdlib only).

The client and the agent both import this module (the agent from its shipped copy), so
a version the host reports and the client's own are read alike, cheaply and without
running the module: a literal ``__version__ = "..."`` at the top level of its source
file, else the version of the installed distribution named like it
(``importlib.metadata``). The client, which looks versions up off any hot path, may
also ask every installed distribution which one provides the module (``thorough``:
tens of milliseconds, read once per ``sys.path``). None when nothing says.
"""

from __future__ import annotations

import re
import sys
import threading

__all__ = ["SOURCE_LIMIT", "module_version", "read_source", "source_version"]

SOURCE_LIMIT = 256 * 1024
"""Bytes of a source file searched for its ``__version__``."""
_VERSION_LIMIT = 100
"""Characters kept of a version string."""
_LITERAL = re.compile(
    rb"""^__version__\s*(?::\s*str\s*)?=\s*(['"])([^'"\\\r\n]{1,100})\1\s*(?:#.*)?$""", re.M
)

_lock = threading.Lock()
_table: tuple[tuple[str, ...], dict[str, list[str]]] | None = None


def _providers(top: str) -> list[str]:
    """The distributions that provide top-level module ``top`` (all of them read once
    per ``sys.path``)."""
    global _table  # noqa: PLW0603 (one table per process, replaced whole)
    key = tuple(sys.path)
    with _lock:
        if _table is None or _table[0] != key:
            try:
                import importlib.metadata  # here: importing it costs an agent's start 15 ms

                mapping = dict(importlib.metadata.packages_distributions())
            except Exception:  # a broken distribution must not break a lookup
                mapping = {}
            _table = (key, mapping)
        return list(_table[1].get(top, ()))


def source_version(source: bytes) -> str | None:
    """The literal ``__version__`` string assigned at the top level of ``source``."""
    match = _LITERAL.search(source)
    return match.group(2).decode("utf-8", "replace") if match else None


def read_source(path: str, limit: int = SOURCE_LIMIT) -> bytes | None:
    """The first ``limit`` bytes of the file at ``path``; None if it cannot be read."""
    try:
        with open(path, "rb") as file:
            return file.read(limit)
    except OSError:
        return None


def _distribution_version(name: str) -> str | None:
    try:
        import importlib.metadata  # here: importing it costs an agent's start 15 ms

        version = importlib.metadata.version(name)
    except Exception:  # not installed, or broken metadata
        return None
    return str(version)[:_VERSION_LIMIT] if version else None


def module_version(top: str, origin: str | None, *, thorough: bool = False) -> str | None:
    """The version of top-level module ``top`` here, whose source file is ``origin``
    (see the module docstring)."""
    if origin and origin.endswith(".py"):
        source = read_source(origin)
        version = source_version(source) if source else None
        if version:
            return version
    version = _distribution_version(top)
    if version or not thorough:
        return version
    for distribution in _providers(top):
        version = _distribution_version(distribution)
        if version:
            return version
    return None
