"""What the client answers when an agent asks for a module: its source, or why not.

Only a module importable here, by module name, is ever answered, and only as the
source of a pure-Python module: the name is checked (dotted identifiers, bounded) and
resolved with importlib's finders as an import would resolve it, never as a path; no
module's code runs for it (a parent package is looked into, not imported). Refused,
each with a reason the host's ImportError shows: the standard library (the host uses
its own), compiled extension modules and modules built into the interpreter (install
them on the host; the client's version is named when known), bytecode without source,
modules over the size limit, and those the user excluded. A file that is not a
module's ``.py`` source is never read, so a host cannot use this to read the client's
files.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster._limits import MAX_MODULE_SIZE as DEFAULT_MAX_SIZE
from actorcluster.remote.agent.versions import module_version

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["DEFAULT_MAX_SIZE", "ModulePolicy", "answer_for", "client_spec", "valid_module_name"]

NAME_LIMIT = 200
"""Characters a module name may have."""

_STDLIB = frozenset({*getattr(sys, "stdlib_module_names", ()), *sys.builtin_module_names})
_SOURCE = tuple(importlib.machinery.SOURCE_SUFFIXES)
_COMPILED = tuple(importlib.machinery.EXTENSION_SUFFIXES)
_BYTECODE = tuple(importlib.machinery.BYTECODE_SUFFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModulePolicy:
    """Which modules one runtime's host may be sent."""

    enabled: bool = True
    """Whether modules are shipped at all."""
    exclude: tuple[str, ...] = ()
    """Modules never shipped (a name excludes its submodules too)."""
    max_size: int = DEFAULT_MAX_SIZE
    """Bytes of source a module may have."""
    prefer_client: bool = False
    """Whether the client's copy wins over one the host has."""

    def excludes(self, name: str) -> bool:
        """Whether ``name`` (or a package above it) is excluded."""
        return any(name == item or name.startswith(item + ".") for item in self.exclude)


def valid_module_name(name: object) -> bool:
    """Whether ``name`` is a dotted module name (identifiers, bounded length)."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_LIMIT:
        return False
    return all(part.isidentifier() for part in name.split("."))


def _search_path(parent: str) -> list[str] | None:
    """Where submodules of ``parent`` are found; None if it is not a package here."""
    module = sys.modules.get(parent)
    if module is not None:
        path = getattr(module, "__path__", None)
        return [entry for entry in path if isinstance(entry, str)] if path is not None else None
    spec = client_spec(parent)
    if spec is None or spec.submodule_search_locations is None:
        return None
    return list(spec.submodule_search_locations)


def client_spec(name: str) -> ModuleSpec | None:
    """``name``'s spec as importing it here would find it, without running any module
    (a parent package is looked into, not imported); None if not importable."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    parent = name.rpartition(".")[0]
    path = None
    if parent:
        path = _search_path(parent)
        if path is None:
            return None
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, path)
        except Exception:
            continue
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def _not_found(name: str) -> dict[str, Any]:
    return {"name": name, "found": False}


def _refused(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "found": False, "refused": reason}


def _install_hint(name: str, what: str) -> str:
    top = name.partition(".")[0]
    spec = client_spec(top)
    version = module_version(top, spec.origin if spec is not None else None, thorough=True)
    has = f" (the client has {top} {version})" if version else ""
    return (
        f"No module named {name!r} on the host: on the client it is {what}, which is "
        f"never shipped; install {top} on the host{has}"
    )


def _package_answer(name: str) -> dict[str, Any]:
    """A namespace package: shipped as an empty package."""
    return {"name": name, "found": True, "package": True, "source": b"", "origin": ""}


def _refusal(name: str, policy: ModulePolicy) -> str | None:
    """Why ``name`` is not sent whatever the client has; None if it may be."""
    if not policy.enabled:
        return f"No module named {name!r} on the host (module shipping is off)"
    if name.partition(".")[0] in _STDLIB:
        return f"{name!r} is in the standard library: the host uses its own"
    if policy.excludes(name):
        return (
            f"No module named {name!r} on the host, and it is excluded from shipping "
            "(ship_modules_exclude)"
        )
    return None


def answer_for(name: object, policy: ModulePolicy) -> dict[str, Any]:
    """The MODULE_SOURCE body answering a request for module ``name``. Never raises."""
    if not valid_module_name(name):
        shown = repr(name)[:NAME_LIMIT]
        return _refused("", f"{shown} is not a module name; modules are asked for by name")
    assert isinstance(name, str)
    refusal = _refusal(name, policy)
    if refusal is not None:
        return _refused(name, refusal)
    try:
        spec = client_spec(name)
        return _not_found(name) if spec is None else _source_answer(name, spec, policy)
    except Exception as exc:  # whatever went wrong here, the host gets an answer
        return _refused(
            name, f"No module named {name!r} on the host; the client could not read it: {exc!r}"
        )


def _source_answer(name: str, spec: ModuleSpec, policy: ModulePolicy) -> dict[str, Any]:
    """The source of ``name`` (found as ``spec``), or why it is not sent."""
    origin = spec.origin
    loader = spec.loader
    is_package = spec.submodule_search_locations is not None
    if (origin is None or origin == "namespace") and is_package:
        return _package_answer(name)
    if isinstance(loader, importlib.machinery.ExtensionFileLoader) or (
        origin is not None and origin.endswith(_COMPILED)
    ):
        return _refused(name, _install_hint(name, "a compiled extension module"))
    if origin in ("built-in", "frozen") or origin is None:
        return _refused(name, _install_hint(name, "built into the client's Python"))
    if origin.endswith(_BYTECODE) or not origin.endswith(_SOURCE):
        return _refused(
            name, _install_hint(name, f"not Python source ({os.path.basename(origin)})")
        )
    source = _read(origin, loader, policy.max_size)
    if len(source) > policy.max_size:
        return _refused(
            name,
            f"No module named {name!r} on the host, and the client's is over the "
            f"{policy.max_size} byte limit for a shipped module (ship_modules_max_size)",
        )
    return {"name": name, "found": True, "package": is_package, "source": source, "origin": origin}


def _read(origin: str, loader: object, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the source at ``origin`` (a file, or a member of
    a zip archive through its loader)."""
    if os.path.isfile(origin):
        with open(origin, "rb") as file:
            return file.read(limit + 1)
    get_data = getattr(loader, "get_data", None)
    if get_data is None:
        raise FileNotFoundError(origin)
    data = get_data(origin)
    if not isinstance(data, bytes):
        raise TypeError(f"the loader of {origin} returned {type(data).__name__}")
    return data[: limit + 1]
