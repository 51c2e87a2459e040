"""The limits are defined once, and :class:`Deadline` is the one way a wait is bounded:
it counts down on the clock it is given (no sleeping here), is unbounded for None, and
raises the caller's own typed error when checked after it passed."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from actorcluster import _limits
from actorcluster._limits import Deadline
from actorcluster.errors import RequestTimeoutError

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[1] / "src" / "actorcluster"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_counts_down_on_its_clock_and_expires() -> None:
    clock = _Clock()
    deadline = Deadline(2.0, clock=clock)
    assert deadline.remaining() == 2.0 and deadline.timeout() == 2.0
    assert not deadline.expired()
    clock.now += 1.5
    assert deadline.remaining() == pytest.approx(0.5)
    clock.now += 1.0
    assert deadline.expired()
    assert deadline.remaining() == 0.0 and deadline.remaining(0.1) == 0.1
    assert deadline.timeout() == 0.0


def test_an_unbounded_deadline_never_expires_and_waits_without_a_timeout() -> None:
    clock = _Clock()
    deadline = Deadline(None, clock=clock)
    clock.now += 1e9
    assert not deadline.expired()
    assert deadline.timeout() is None
    assert deadline.remaining() == math.inf
    deadline.check(lambda: AssertionError("an unbounded deadline does not pass"))


def test_check_raises_the_callers_typed_error_once_passed() -> None:
    clock = _Clock()
    deadline = Deadline(3.0, clock=clock)
    error = RequestTimeoutError("host-1", "the answer", 3.0)
    deadline.check(lambda: error)
    clock.now += 3.0
    with pytest.raises(RequestTimeoutError) as raised:
        deadline.check(lambda: error)
    assert raised.value is error
    assert "3.0" in str(raised.value)


def test_limits_is_a_leaf_of_the_standard_library() -> None:
    tree = ast.parse((ROOT / "_limits.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "collections", "math", "time", "typing"}


def test_every_limit_has_a_docstring_and_is_defined_nowhere_else() -> None:
    names = [name for name in _limits.__all__ if name.isupper()]
    source = (ROOT / "_limits.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    documented = {
        node.targets[0].id
        for node, after in zip(tree.body, tree.body[1:], strict=False)
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
    }
    assert set(names) <= documented
    elsewhere = [
        f"{path.relative_to(ROOT)}: {target.id}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.name != "_limits.py" and "remote/agent" not in path.as_posix()
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in names
    ]
    assert not elsewhere, elsewhere
