"""FS: every op, with paths a shell would mangle, and bad input."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from agent_harness import AgentProcess

WEIRD = "we ird \"q\" 's' $(touch pwned) `touch pwned2` ü 日本"


def _value(agent: AgentProcess, op: str, **fields: object) -> object:
    final = agent.fs(op, **fields)
    assert final.kind == Kind.RESULT, final
    return final.payload["value"]


def _error(agent: AgentProcess, op: str, **fields: object) -> str:
    final = agent.fs(op, **fields)
    assert final.kind == Kind.ERROR, final
    assert final.payload["message"]
    return str(final.payload["type"])


def test_mkdir_creates_parents_literally_and_applies_the_mode(
    agent: AgentProcess, tmp_path: Path
) -> None:
    target = tmp_path / WEIRD / "deeper"
    assert _value(agent, "mkdir", path=str(target), mode=0o750) == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert _value(agent, "mkdir", path=f"{WEIRD}/deeper") == str(target)  # exists: fine
    assert sorted(os.listdir(tmp_path)) == [WEIRD]


def test_mkdir_with_a_file_in_the_way_answers_an_error(agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert _error(agent, "mkdir", path=str(tmp_path / "file")) == "FileExistsError"
    assert _error(agent, "mkdir", path=str(tmp_path / "file" / "sub")) == "NotADirectoryError"


def test_rmtree_removes_a_tree_or_a_file_and_reports_a_missing_path(
    agent: AgentProcess, tmp_path: Path
) -> None:
    tree = tmp_path / WEIRD
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    (tmp_path / "single").write_text("x")
    assert _value(agent, "rmtree", path=WEIRD) is True
    assert _value(agent, "rmtree", path="single") is True
    assert _value(agent, "rmtree", path=WEIRD) is False
    assert os.listdir(tmp_path) == []


def test_mkdtemp_makes_a_private_folder_where_asked(agent: AgentProcess, tmp_path: Path) -> None:
    path = _value(agent, "mkdtemp", prefix="p $(x) ", dir=str(tmp_path), temporary=False)
    assert isinstance(path, str)
    made = Path(path)
    assert made.parent == tmp_path
    assert made.name.startswith("p $(x) ")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_stat_describes_files_folders_and_missing_paths(
    agent: AgentProcess, tmp_path: Path
) -> None:
    (tmp_path / WEIRD).write_bytes(b"12345")
    (tmp_path / WEIRD).chmod(0o640)
    assert _value(agent, "stat", path=WEIRD) == {"is_dir": False, "size": 5, "mode": 0o640}
    assert _value(agent, "stat", path=str(tmp_path))["is_dir"] is True  # type: ignore[index]
    assert _value(agent, "stat", path="missing") is None
    assert _value(agent, "stat", path=f"{WEIRD}/below-a-file") is None


def test_which_searches_the_requests_path(agent: AgentProcess, tmp_path: Path) -> None:
    tool = tmp_path / "bin dir" / "my-tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    found = _value(agent, "which", names=["sh", "my-tool", "no-such-tool-here"])
    assert isinstance(found, dict)
    assert found == {"sh": found["sh"], "my-tool": None, "no-such-tool-here": None}
    assert os.path.isabs(found["sh"])
    env = {"PATH": str(tool.parent)}
    assert _value(agent, "which", names=["my-tool"], env=env) == {"my-tool": str(tool)}


def test_abspath_expands_home_and_resolves_against_the_working_dir(
    agent: AgentProcess, tmp_path: Path
) -> None:
    assert _value(agent, "abspath", path=f"a/../{WEIRD}") == str(tmp_path / WEIRD)
    assert _value(agent, "abspath", path="~/x") == os.path.expanduser("~/x")
    assert _value(agent, "abspath", path="/abs/$(x)") == "/abs/$(x)"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"op": "explode"}, "ValueError"),
        ({"op": None}, "ValueError"),
        ({"op": "mkdir"}, "TypeError"),
        ({"op": "stat", "path": 5}, "TypeError"),
        ({"op": "mkdir", "path": "nul\x00byte"}, "ValueError"),
        ({"op": "mkdir", "path": "x", "mode": "0755"}, "TypeError"),
        ({"op": "which", "names": "sh"}, "TypeError"),
    ],
)
def test_bad_input_answers_a_typed_error(
    agent: AgentProcess, fields: dict[str, object], error: str
) -> None:
    _, final = agent.request(Kind.FS, fields)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, error)
