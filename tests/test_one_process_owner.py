"""One owner of supervised processes: clusters reach their processes through the
process service (``runtimes.supervised``) only, never through process actors (issue
27). The checkout's own files are read."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "actorcluster"
FORBIDDEN = ("actorcluster.actors",)
"""What no module of ``cluster/`` may import (lazily or for types either)."""


def _imported(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: inside cluster/, never actors/
                continue
            found += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return found


def test_no_cluster_module_imports_process_actors() -> None:
    offending = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "cluster").rglob("*.py"))
        for name in _imported(path)
        if name.startswith(FORBIDDEN) or name.endswith(".ProcessActor")
    )
    assert not offending, "use runtimes.supervised (the process service):\n" + "\n".join(offending)


def test_the_check_sees_an_offending_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from actorcluster.actors.process import ProcessActor\n"
    )
    assert "actorcluster.actors.process" in _imported(module)
