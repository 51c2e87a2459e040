"""The modules a shipped module will import next, sent with it in one answer.

An agent asks for a module the host lacks when a function imports it (see
:mod:`actorcluster.remote.modules`). Asked one by one, a package of 20 modules costs
20 round trips: at 80 ms from the client, 1.6 s before the function even starts. So
the answer for a module carries a **bundle**: the answers for the modules its source
imports, and theirs in turn (found by reading the sources' ``import`` statements, never
by running them), as far as they are

- in the same top-level package as the module asked for (``pkg.sub`` for ``pkg``), or
  top-level modules of the user's own (found here outside ``site-packages``: the host is
  unlikely to have them), and
- pure-Python source this runtime may send (:func:`module_lookup.answer_for` decides,
  as for a request: the standard library, compiled modules and excluded ones never
  travel), within :data:`BUNDLE_MODULES` modules and :data:`BUNDLE_BYTES` bytes.

The agent keeps the bundle as answers already received and uses each only when an
import would have asked the client for it (a module the host has is still the host's);
so a bundle never changes what a function imports, only how many round trips it takes.
"""

from __future__ import annotations

import ast
import os
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from actorcluster._limits import MODULE_BUNDLE_BYTES as BUNDLE_BYTES
from actorcluster.remote.module_lookup import answer_for, client_spec, valid_module_name

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from actorcluster.remote.module_lookup import ModulePolicy

__all__ = ["BUNDLE_BYTES", "BUNDLE_MODULES", "bundle_for"]

BUNDLE_MODULES = 256
"""Modules one answer bundles, at most."""

_STDLIB = frozenset({*getattr(sys, "stdlib_module_names", ()), *sys.builtin_module_names})
_INSTALLED = ("site-packages", "dist-packages")


def imported_names(name: str, source: bytes, *, package: bool) -> Iterator[str]:
    """Module names that ``name``'s source imports, absolute, in order (each candidate
    once; ``from x import y`` also yields ``x.y``, which may be a name, not a module)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    here = name if package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(here, node.module, node.level)
            if base is None:
                continue
            if base:
                yield from _with_parents(base)
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name


def _with_parents(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def _resolve(package: str, module: str | None, level: int) -> str | None:
    """The absolute name ``from <level dots><module> import`` means in ``package``."""
    if level == 0:
        return module or None
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base) or None


def _users_own(top: str) -> bool:
    """Whether top-level module ``top`` is the user's own code here (not installed)."""
    spec = client_spec(top)
    origin = spec.origin if spec is not None else None
    if not origin or origin in ("built-in", "frozen", "namespace"):
        return False
    return not any(part in _INSTALLED for part in os.path.normpath(origin).split(os.sep))


def bundle_for(
    first: dict[str, Any], policy: ModulePolicy, sent: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The answers to send with ``first`` (a found module's answer): the modules its
    source imports, transitively, that the rules above allow, but those in ``sent``
    (the host has them already); bounded."""
    name = first["name"]
    top = name.partition(".")[0]
    seen = {name, *sent}
    tops: dict[str, bool] = {top: True}
    queue = deque([first])
    bundle: list[dict[str, Any]] = []
    size = 0
    while queue and len(bundle) < BUNDLE_MODULES:
        answer = queue.popleft()
        source = answer.get("source") or b""
        for candidate in imported_names(
            answer["name"], source, package=bool(answer.get("package"))
        ):
            if candidate in seen or not valid_module_name(candidate):
                continue
            seen.add(candidate)
            head = candidate.partition(".")[0]
            if head in _STDLIB:
                continue
            if head not in tops:
                tops[head] = _users_own(head)
            if not tops[head]:
                continue
            found = answer_for(candidate, policy)
            extra = len(found.get("source") or b"")
            if not found.get("found") or size + extra > BUNDLE_BYTES:
                continue
            size += extra
            bundle.append(found)
            queue.append(found)
            if len(bundle) >= BUNDLE_MODULES:
                break
    return bundle
