"""The agent's sources suit every CPython from 3.8 on (the host's, whatever the client
runs): each older interpreter here compiles them, and nothing evaluated at run time
subscripts a builtin or ``collections.abc`` generic (``list[int]``, ``Callable[...]``)
or writes ``X | None``, which 3.8 cannot evaluate. Annotations are strings (``from
__future__ import annotations``) and may use both."""

from __future__ import annotations

import ast
import glob
import os
import subprocess
from pathlib import Path

import cloudpickle
import pytest

from actorcluster.remote import bootstrap

AGENT = Path(bootstrap.__file__).parent / "agent"
SOURCES = sorted(AGENT.glob("*.py"))
GENERICS = frozenset(
    {"Callable", "dict", "list", "tuple", "set", "frozenset", "type", "Iterator", "Iterable"}
    | {"Mapping", "Sequence", "deque", "Queue", "SimpleQueue", "OrderedDict", "defaultdict"}
    | {"Counter", "Generator", "MutableMapping", "Pattern", "Match"}
)
OLDER = sorted(
    path
    for minor in ("3.8", "3.9", "3.10")
    for path in glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python3"))[-1:]
)


def _annotations(tree: ast.AST) -> set[int]:
    """Ids of the nodes that are annotations or only read by type checkers."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            skipped |= {id(a.annotation) for a in every if a.annotation is not None}
            if node.returns is not None:
                skipped.add(id(node.returns))
        elif isinstance(node, ast.AnnAssign):
            skipped.add(id(node.annotation))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(statement) for statement in node.body}
    return skipped


def _run_time_generics(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _annotations(tree)
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if id(node) in skipped:
            return
        if isinstance(node, ast.Subscript):
            value = node.value
            name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
            if name in GENERICS and not ast.unparse(value).startswith("typing."):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = (node.left, node.right)
            if any(isinstance(side, ast.Constant) and side.value is None for side in sides):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_no_generic_is_subscripted_at_run_time(path):
    assert _run_time_generics(path) == []


@pytest.mark.parametrize("python", OLDER or [None], ids=lambda p: p and p.split("/")[-3])
def test_every_older_python_compiles_the_agent_and_cloudpickle(python):
    if python is None:
        pytest.skip("no older CPython on this machine (pyenv)")
    files = [*map(str, SOURCES), *glob.glob(f"{Path(cloudpickle.__file__).parent}/*.py")]
    check = "import sys\nfor f in sys.argv[1:]:\n    compile(open(f).read(), f, 'exec')\n"
    result = subprocess.run(
        [python, "-c", check, *files], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


TOO_OLD = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.7.*/bin/python3")))[-1:]


@pytest.mark.parametrize("python", TOO_OLD or [None], ids=lambda p: p and p.split("/")[-3])
def test_a_python_older_than_3_8_is_told_what_is_needed(python):
    if python is None:
        pytest.skip("no CPython 3.7 on this machine (pyenv)")
    result = subprocess.run(
        [python, "-c", bootstrap.first_stage()],
        input=bootstrap.stage_two().wire_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert b"actorcluster agent needs Python >= 3.8, found 3.7." in result.stderr


@pytest.mark.parametrize("python", OLDER or [None], ids=lambda p: p and p.split("/")[-3])
def test_an_older_python_asks_for_the_sources_once_and_starts(python):
    if python is None:
        pytest.skip("no older CPython on this machine (pyenv)")
    from actorcluster.remote.agent.frames import READY_MARKER

    process = subprocess.Popen(
        [python, "-c", bootstrap.first_stage()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(bootstrap.stage_two().wire_bytes())
        process.stdin.flush()
        seen = b""
        while not seen.endswith(bootstrap.SOURCES_REQUEST):
            byte = process.stdout.read(1)
            assert byte, process.stderr.read() if process.stderr else b""
            seen += byte
        process.stdin.write(bootstrap.source_stage())
        process.stdin.flush()
        assert process.stdout.read(len(READY_MARKER)) == READY_MARKER
    finally:
        process.kill()
        process.communicate(timeout=10)
