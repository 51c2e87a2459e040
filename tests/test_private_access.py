"""No module outside ``runtimes/`` touches a private member of a runtime.

Groups, clusters, the CLI, the observer and the benchmarks reach a runtime through its
public :class:`~actorcluster.runtimes.RuntimeHandle` (``runtime.handle``) and the
``Runtime`` facade, never through ``runtime._handle``, ``runtime._submit`` or
``task._steps``; and no module outside ``groups/`` touches a ``RuntimeGroup``'s.
The checkout's files are parsed (``ast``), nothing is imported.

The rule, practical rather than typed: the private names (a leading underscore, not a
dunder) that the classes of a defining package define (methods, class attributes,
``self._x = ...``) are the ones a module of another package may not reach as
``expr._name`` (``expr`` other than ``self``/``cls``) or ``getattr(expr, "_name")``.
A name that a class of the reading module's own package defines too is that
package's business (``launcher._process`` in ``cluster/``), so it is not flagged there.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

REPO = Path(__file__).resolve().parents[1]
DEFINERS: dict[str, frozenset[str] | None] = {
    "runtimes": None,
    "groups": frozenset({"RuntimeGroup"}),
}
"""The packages whose objects' insides are theirs alone, and which of their classes
count (None: every class in it)."""
ALLOWED = {
    ("ssh/channel_io.py", "old._lock"): "paramiko's BufferedPipe, not a runtime's",
    ("ssh/channel_io.py", "old._closed"): "paramiko's BufferedPipe, not a group's",
}
"""``(module, expression)`` pairs that only look like a runtime's privates, each with
why it is something else."""
_ACCESSORS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"self", "cls"}


def _class_privates(cls: ast.ClassDef) -> Iterator[str]:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
            yield node.name
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        yield from (t.id for t in targets if isinstance(t, ast.Name) and _private(t.id))
    for node in ast.walk(cls):
        stored = isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
        if stored and _own(node.value) and _private(node.attr):
            yield node.attr


def private_names(trees: Mapping[str, ast.Module], classes: frozenset[str] | None) -> set[str]:
    """The private names the classes (``classes``, or all) of the parsed modules define."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and (classes is None or node.name in classes):
                names.update(_class_privates(node))
    return names


def package_of(module: str) -> str:
    """The package a module (path relative to ``src/actorcluster``, or
    ``benchmarks/x.py``) belongs to: its first folder, or the module itself."""
    return module.partition("/")[0] if "/" in module else module.removesuffix(".py")


def _reads(tree: ast.AST) -> Iterator[tuple[int, str, str]]:
    """``(line, name, expression)`` for each private attribute read off another object."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _own(node.value):
            yield node.lineno, node.attr, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            yield node.lineno, node.args[1].value, ast.unparse(node)


@dataclass(frozen=True)
class Rules:
    """What the scan forbids, read from the sources once."""

    forbidden: dict[str, set[str]]
    """Each defining package's private names (see :data:`DEFINERS`)."""
    own: dict[str, set[str]]
    """Each package's own private names (any class of it defines them)."""


def rules_of(trees: Mapping[str, ast.Module]) -> Rules:
    """The rules for ``trees``, which map module paths (``runtimes/handle.py``,
    ``benchmarks/bench_x.py``) to their parsed text."""
    by_package: dict[str, dict[str, ast.Module]] = {}
    for module, tree in trees.items():
        by_package.setdefault(package_of(module), {})[module] = tree
    forbidden = {
        package: private_names(by_package.get(package, {}), classes)
        for package, classes in DEFINERS.items()
    }
    own = {package: private_names(modules, None) for package, modules in by_package.items()}
    return Rules(forbidden, own)


def module_violations(module: str, tree: ast.Module, rules: Rules) -> list[str]:
    """``module:line: expression`` for each reach of ``module`` into another
    package's privates."""
    package = package_of(module)
    own = rules.own.get(package, set()) | private_names({module: tree}, None)
    found = []
    for line, name, expression in _reads(tree):
        owners = [p for p, names in rules.forbidden.items() if p != package and name in names]
        if owners and name not in own and (module, expression) not in ALLOWED:
            found.append(f"{module}:{line}: {expression} ({owners[0]}'s)")
    return found


def violations(trees: Mapping[str, ast.Module]) -> list[str]:
    """Every module's reaches into another package's privates (see :func:`rules_of`)."""
    rules = rules_of(trees)
    return [found for m, t in sorted(trees.items()) for found in module_violations(m, t, rules)]


def checkout_trees(repo: Path = REPO) -> dict[str, ast.Module]:
    """Every module of ``src/actorcluster`` (by its path there) and of ``benchmarks/``,
    parsed."""
    root = repo / "src" / "actorcluster"
    paths = {str(p.relative_to(root)): p for p in root.rglob("*.py")}
    paths.update({f"benchmarks/{p.name}": p for p in (repo / "benchmarks").glob("*.py")})
    return {module: ast.parse(p.read_text("utf-8"), str(p)) for module, p in paths.items()}


TREES = checkout_trees()
RULES = rules_of(TREES)


def test_no_module_reaches_into_a_runtimes_privates() -> None:
    found = violations(TREES)
    assert not found, (
        "modules outside runtimes/ (groups/) reach into a runtime's (a group's) private "
        "members; use the public RuntimeHandle (runtime.handle) or a public function of "
        "the package instead:\n" + "\n".join(found)
    )


def test_the_scan_knows_the_runtimes_private_names() -> None:
    runtimes = {m: tree for m, tree in TREES.items() if package_of(m) == "runtimes"}
    names = private_names(runtimes, None)
    assert {"_handle", "_tasks", "_host_info", "_child_id", "_steps", "_over"} <= names
    assert "_members" in private_names(TREES, frozenset({"RuntimeGroup"}))


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("groups/planted.py", "def f(runtime):\n    return runtime._handle.client()\n"),
        ("cluster/planted.py", "def f(rt):\n    return rt.handle._child_id\n"),
        ("cli/planted.py", "def f(rt):\n    return getattr(rt, '_host_info')\n"),
        ("benchmarks/bench_planted.py", "def f(task):\n    task._steps = []\n"),
        ("cluster/planted.py", "def f(group):\n    return group._members.all()\n"),
        ("observe/planted.py", "def f(runtimes):\n    return runtimes['a']._host_info\n"),
    ],
)
def test_the_scan_sees_a_planted_reach_through(module: str, source: str) -> None:
    assert module_violations(module, ast.parse(source), RULES)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "runtimes/planted.py",
            "class R:\n    def f(self, other):\n        return other._handle\n",
        ),
        ("groups/planted.py", "def f(group, self):\n    return group._members, self._handle\n"),
        (
            "cli/planted.py",
            "class P:\n    def f(self, pool):\n        return pool._scanned\n"
            "    def g(self):\n        self._scanned = 1\n",
        ),
        ("ssh/channel_io.py", "def f(old):\n    return old._lock, old._closed\n"),
    ],
)
def test_the_scan_allows_what_is_ones_own(module: str, source: str) -> None:
    assert module_violations(module, ast.parse(source), RULES) == []
