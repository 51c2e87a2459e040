"""The layers stay layers: each room imports only the rooms drawn below it in
``docs/architecture.md`` (so no package imports in a cycle; a lazy or type-only import
counts), the modules inside a package import each other in no circle (module level,
type-only imports aside), the wire protocol is spoken only in ``remote/``, paramiko is
seen only in ``ssh/``, and the shipped agent uses the standard library alone. The
checkout's own files are read, not the installed copy of the package."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "src" / "actorcluster"
ARCHITECTURE = REPO / "docs" / "architecture.md"


def _rooms() -> dict[str, float]:
    """The drawing of rooms in ``docs/architecture.md`` (its ```layers block): each
    row is a rank and the rooms on it."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = re.search(r"^```layers\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert block, f"{ARCHITECTURE} has no ```layers block (the drawing of rooms)"
    ranks: dict[str, float] = {}
    for line in block.group(1).splitlines():
        rank, *rooms = line.split()
        for room in rooms:
            assert room not in ranks, f"room {room} is drawn twice"
            ranks[room] = float(rank)
    return ranks


RANKS = _rooms()
"""Each room's (a package's or a module's) rank: it may import only lower ones."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (lazy and type-only too), absolute;
    ``from package import name`` counts as importing the submodule ``package.name``
    when the checkout has one (so a room may be a module of a package)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([node.module] if node.module else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append(name if name in CHECKOUT_MODULES else base)
    return found


def _layer(module: str) -> str:
    """The room that owns ``module``: the longest drawn name it starts with."""
    parts = module.split(".")[1:]
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in RANKS:
            return ".".join(parts[:end])
    return parts[0] if parts else "__init__"


SOURCES = sorted(ROOT.rglob("*.py"))
CHECKOUT_MODULES = {_module_name(path) for path in SOURCES}


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


def _modules(root: Path) -> dict[str, Path]:
    """Each module of the package at ``root`` by its dotted name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _load_time_imports(module: str, modules: dict[str, Path], *, lazy: bool = False) -> set[str]:
    """The modules of ``modules`` that importing ``module`` imports at once: its
    module-level imports (inside ``if``/``try`` too), not those under ``TYPE_CHECKING``
    nor (unless ``lazy``) those in a function's body. ``from package import name``
    counts as importing the submodule ``package.name`` when there is one."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for part in (node.body, node.orelse, node.finalbody):
                    visit(part)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([node.module] if node.module else []))
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            elif lazy:
                visit(
                    [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
                )

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {name for name in found if name in modules and name != module}


def _circles(
    root: Path, *, lazy: bool = False, cold: Mapping[tuple[str, str], str] | None = None
) -> list[list[str]]:
    """Every circle of load-time imports (with ``lazy``: imports in functions too, but
    not the ``cold`` edges) between modules of one package under ``root``."""
    modules = _modules(root)

    def package_of(module: str) -> str:
        return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]

    graph = {
        module: sorted(
            target
            for target in _load_time_imports(module, modules, lazy=lazy)
            if package_of(target) == package_of(module) and (module, target) not in (cold or {})
        )
        for module in modules
    }
    circles: list[list[str]] = []
    done: set[str] = set()

    def walk(module: str, trail: list[str]) -> None:
        if module in trail:
            circles.append([*trail[trail.index(module) :], module])
            return
        if module in done:
            return
        for target in graph[module]:
            walk(target, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        walk(module, [])
    return circles


def test_modules_inside_a_package_import_each_other_in_no_circle() -> None:
    """runtimes (runtime/task/reprs/processes), cluster (launchers, runtime_cluster,
    reprs), groups (group, reprs) and the agent (hub, links) had circles; a use only for
    typing goes under ``TYPE_CHECKING``, one on a cold path is imported where used."""
    circles = [" -> ".join(circle) for circle in _circles(ROOT)]
    assert not circles, "\n".join(circles)


COLD_IMPORTS = {
    ("actorcluster.runtimes.runtime", "actorcluster.runtimes.reprs"): "the notebook's HTML view",
    ("actorcluster.runtimes.task", "actorcluster.runtimes.reprs"): "the notebook's HTML view",
    ("actorcluster.runtimes.task", "actorcluster.runtimes.runtime"): "RuntimeTask.execute("
    "connection) makes a Runtime for one run (lazycluster's API: a task runs a runtime)",
    ("actorcluster.groups.group", "actorcluster.groups.reprs"): "the notebook's HTML view",
    ("actorcluster.cluster.runtime_cluster", "actorcluster.cluster.reprs"): "the HTML view",
    ("actorcluster.cluster.launchers", "actorcluster.cluster.runtime_cluster"): "the default"
    " port range, read when a launcher has none (cluster/ is another branch's: move the"
    " range to cluster/ports.py there)",
    ("actorcluster.remote.agent.calls", "actorcluster.remote.agent.isolated"): "a CALL with"
    " isolated=True (opt-in: the function runs in a forked child that reuses calls' code)",
}
"""Imports inside a function that close a circle, each on a cold path, with its reason."""


def test_lazy_imports_close_circles_only_on_the_known_cold_paths() -> None:
    """Imports in functions count too, but for the listed cold ones: a new lazy import
    that closes a circle inside a package is seen here."""
    circles = [" -> ".join(circle) for circle in _circles(ROOT, lazy=True, cold=COLD_IMPORTS)]
    assert not circles, "\n".join(circles)
    modules = _modules(ROOT)
    stale = [
        edge
        for edge in COLD_IMPORTS
        if edge[1] not in _load_time_imports(edge[0], modules, lazy=True)
    ]
    assert not stale, f"no longer imported: drop from COLD_IMPORTS: {stale}"


def test_the_circle_check_sees_a_circle(tmp_path: Path) -> None:
    """The check itself: two modules that import each other at load time are found, a
    type-only import is not."""
    package = tmp_path / "actorcluster" / "loop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from actorcluster.loop import b\n\ndef g():\n    from actorcluster.loop import c\n"
    )
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nfrom . import a\n"
        "if TYPE_CHECKING:\n    from actorcluster.loop import c\n"
    )
    (package / "c.py").write_text("import actorcluster.loop.b\n\ndef f():\n    from . import a\n")
    circles = _circles(tmp_path / "actorcluster")
    assert [sorted(set(circle)) for circle in circles] == [
        ["actorcluster.loop.a", "actorcluster.loop.b"]
    ]
    lazy = _circles(tmp_path / "actorcluster", lazy=True)
    assert any("actorcluster.loop.c" in circle for circle in lazy), lazy
    cold = {("actorcluster.loop.a", "actorcluster.loop.c"): "a test's"}
    kept = _circles(tmp_path / "actorcluster", lazy=True, cold=cold)
    assert not any("actorcluster.loop.c" in circle for circle in kept), kept


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


def test_the_longest_drawn_name_owns_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A room may be a module of a package: it owns that module, the package the rest."""
    assert _layer("actorcluster.remote.agent.frames") == "remote"
    monkeypatch.setitem(RANKS, "remote.agent", 3.5)
    assert _layer("actorcluster.remote.agent.frames") == "remote.agent"
    assert _layer("actorcluster.remote.session") == "remote"
    assert _layer("actorcluster") == "__init__"
