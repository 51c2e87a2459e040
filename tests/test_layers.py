"""The layers stay layers: lower packages import nothing above them, no package imports
in a cycle (a lazy or type-only import counts), the wire protocol is spoken only in
``remote/``, paramiko is seen only in ``ssh/``, and the shipped agent uses the standard
library alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import actorcluster

ROOT = Path(actorcluster.__file__).parent

RANKS = {
    "errors": 0,
    "_logging": 1,
    "_html": 1,
    "_timers": 2,
    "_aio": 3,
    "futures": 2,
    "messages": 3,
    "ssh": 3,
    "remote": 3,
    "observe.core": 3.5,
    "supervisors": 4,
    "tunnels": 5,
    "steps": 5,
    "actors": 6,
    "runtimes": 7,
    "groups": 8,
    "cluster": 9,
    "observe": 10,
    "__init__": 10,
    "exceptions": 10,
    "runtime_mgmt": 10,
    "logconfig": 10,
    "notebook": 10,
    "demo": 11,
    "cli": 12,
    "__main__": 13,
}
"""Each package's (or top-level module's) layer: it may import only lower ones."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (lazy and type-only too), absolute."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module and "." in node.module:
                # each name, so that a submodule's own layer counts (observe's core)
                found += [f"{node.module}.{alias.name}" for alias in node.names]
            elif node.module:
                found.append(node.module)
    return found


OBSERVE_CORE = {"bus", "events", "hooks", "shapes", "snapshots"}
"""The modules of ``observe`` the tree itself publishes through (a layer below it)."""


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[1:2] == ["observe"] and parts[2:3] and parts[2] in OBSERVE_CORE:
        return "observe.core"
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = sorted(ROOT.rglob("*.py"))


def _edges() -> set[tuple[str, str, str]]:
    edges = set()
    for path in SOURCES:
        source = _layer(_module_name(path))
        for target in _imports(path):
            if target == "actorcluster" or target.startswith("actorcluster."):
                layer = _layer(target)
                if layer != source:
                    edges.add((source, layer, str(path.relative_to(ROOT))))
    return edges


def test_every_package_has_a_layer() -> None:
    layers = {_layer(_module_name(path)) for path in SOURCES}
    assert layers <= set(RANKS), f"give these a rank in RANKS: {sorted(layers - set(RANKS))}"


def test_packages_import_only_lower_layers_so_there_is_no_cycle() -> None:
    upward = sorted(
        f"{where}: {source} (layer {RANKS[source]}) imports {target} (layer {RANKS[target]})"
        for source, target, where in _edges()
        if RANKS.get(target, 99) >= RANKS.get(source, -1)
    )
    assert not upward, "\n".join(upward)


def _offenders(predicate: str, allowed: str) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for path in SOURCES
        if not str(path.relative_to(ROOT)).startswith(allowed)
        and any(name == predicate or name.startswith(predicate + ".") for name in _imports(path))
    )


def test_only_ssh_imports_paramiko() -> None:
    assert _offenders("paramiko", "ssh/") == []


def test_only_remote_speaks_the_wire_protocol() -> None:
    assert _offenders("actorcluster.remote.agent.frames", "remote/") == []


@pytest.mark.parametrize(
    "path", sorted((ROOT / "remote" / "agent").glob("*.py")), ids=lambda path: path.name
)
def test_the_shipped_agent_imports_only_the_standard_library(path: Path) -> None:
    package = "actorcluster.remote.agent"
    outside = [
        name
        for name in _imports(path)
        if not name.startswith(package)
        and name.partition(".")[0] not in sys.stdlib_module_names
        and name.partition(".")[0] != "cloudpickle"  # shipped with it, imported on first CALL
    ]
    assert outside == []
