"""The benchmarks use only actorcluster's public API, and every one has a quick mode.

CI runs every ``benchmarks/bench_*.py`` in quick mode (``.ci/run``), which proves they
run; this test proves, without running them, that none reaches into actorcluster's
private state (``runtime._handle``, ``agent._CHANNEL_WINDOW``, ``from actorcluster.x
import _y``, ``getattr(rt, "_context")``), so a refactor of internals that breaks a
benchmark fails here with the line to fix, not months later when someone runs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
OWN_NAMES = frozenset({"self", "cls"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _foreign_modules(tree: ast.Module) -> set[str]:
    """Names bound to modules that are not actorcluster's (``os``, ``_benchlib``): a
    benchmark may use their private names (``os._exit``, its own helpers)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.partition(".")[0] != "actorcluster":
                    names.add(alias.asname or alias.name.partition(".")[0])
    return names


def private_uses(path: Path) -> list[str]:
    """``file:line: what`` for each use of a private name of actorcluster in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    foreign = _foreign_modules(tree) | OWN_NAMES
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in foreign):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actorcluster"):
            parts = (node.module or "").split(".")
            names = [alias.name for alias in node.names]
            if any(map(_private, parts)) or any(map(_private, names)):
                found.append((node.lineno, f"from {node.module} import {', '.join(names)}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "actorcluster" and any(map(_private, parts)):
                    found.append((node.lineno, f"import {alias.name}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return [f"{path.name}:{line}: {text}" for line, text in sorted(found)]


def test_benchmarks_use_only_public_names() -> None:
    files = sorted(BENCHMARKS.glob("*.py"))
    assert files, f"no benchmarks found in {BENCHMARKS}"
    uses = [use for path in files for use in private_uses(path)]
    assert not uses, (
        "benchmarks reach into actorcluster's private names; use the public API (or a "
        "log event, see _benchlib.EventCounter) instead:\n" + "\n".join(uses)
    )


@pytest.mark.parametrize(
    "source",
    [
        "def f(rt):\n    return rt._context\n",
        "from actorcluster.actors import agent\nagent._CHANNEL_WINDOW = 1\n",
        "from actorcluster.remote.modules import _WORKER\n",
        "import actorcluster._logging\n",
        "def f(rt):\n    return getattr(rt, '_handle')\n",
        "def f(rt):\n    return rt.a._b\n",
    ],
)
def test_the_check_sees_private_uses(tmp_path: Path, source: str) -> None:
    path = tmp_path / "bench_x.py"
    path.write_text(source)
    assert private_uses(path)


def test_the_check_allows_own_and_foreign_privates(tmp_path: Path) -> None:
    path = tmp_path / "bench_x.py"
    path.write_text(
        "import os\nimport _benchlib\n\nclass A:\n    def f(self):\n"
        "        return self._x, os._exit, _benchlib._fmt, type(self).__name__\n"
    )
    assert private_uses(path) == []


def test_every_benchmark_has_a_quick_mode() -> None:
    """CI runs each in quick mode: it must take ``--quick``/``BENCH_QUICK`` (through
    ``_benchlib.bench_arguments``, or by reading the variable itself)."""
    lacking = [
        path.name
        for path in sorted(BENCHMARKS.glob("bench_*.py"))
        if "bench_arguments(" not in (text := path.read_text()) and "BENCH_QUICK" not in text
    ]
    assert not lacking, f"benchmarks without a quick mode (see benchmarks/README.md): {lacking}"
