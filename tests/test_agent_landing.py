"""Uploads land all or nothing on the agent: modes, merges, interruptions, a killed
agent (its watchdog, or the next agent, removes what it left), a full disk."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import sys
import tarfile
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent.frames import Kind
from actorcluster.remote.agent.landing import is_partial_name
from agent_harness import AgentProcess, agent_env
from proctree import descendants, wait_gone
from small_disk import mounted_tmpfs
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KIB = 1024


def _tar(
    files: dict[str, bytes], modes: dict[str, int] | None = None, *, end: bool = True
) -> bytes:
    """A tar stream of ``files`` (folders made for their parents; ``modes`` by name).

    ``end=False`` leaves out the end-of-archive blocks: a stream cut between members.
    """
    modes = modes or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in sorted({os.path.dirname(name) for name in files} - {""}):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, modes.get(folder, 0o755)
            archive.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), modes.get(name, 0o644)
            archive.addfile(info, io.BytesIO(data))
        members_end = archive.offset
    return buffer.getvalue() if end else buffer.getvalue()[:members_end]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path: content)."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as file:
                found[os.path.relpath(path, root)] = file.read()
    return found


def _partials(root: Path) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
        if is_partial_name(name)
    ]


@pytest.fixture
def isolated_agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """An agent with umask 027 and a ledger folder of its own (``tmp_path/cache``)."""
    command = ["sh", "-c", f"umask 027; exec {sys.executable} -m actorcluster.remote.agent"]
    agent = AgentProcess(
        cwd=str(tmp_path),
        command=command,
        env=agent_env({"XDG_CACHE_HOME": str(tmp_path / "cache")}),
    )
    yield agent
    agent.close()


# --- modes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("special", "landed"), [(False, 0o750), (True, 0o6750)])
def test_a_file_keeps_its_bits_less_the_umask_and_special_bits_only_when_asked(
    isolated_agent: AgentProcess, tmp_path: Path, special: bool, landed: int
) -> None:
    request_id = isolated_agent.start(
        Kind.PUT, {"path": "f", "kind": "file", "mode": 0o6777, "special": special}
    )
    isolated_agent.send(Kind.PUT_END, request_id, {})
    assert isolated_agent.replies(request_id)[1].kind == Kind.RESULT
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == landed


@pytest.mark.parametrize(
    ("special", "file_mode", "dir_mode"), [(False, 0o750, 0o750), (True, 0o6750, 0o1750)]
)
def test_a_tree_keeps_its_bits_less_the_umask_and_special_bits_only_when_asked(
    isolated_agent: AgentProcess, tmp_path: Path, special: bool, file_mode: int, dir_mode: int
) -> None:
    stream = _tar({"d/f": b"x"}, {"d": 0o1777, "d/f": 0o6777})
    request_id = isolated_agent.start(
        Kind.PUT, {"path": "t", "kind": "tar", "mode": None, "special": special}
    )
    isolated_agent.send(Kind.PUT_CHUNK, request_id, {"data": stream})
    isolated_agent.send(Kind.PUT_END, request_id, {})
    assert isolated_agent.replies(request_id)[1].kind == Kind.RESULT
    assert stat.S_IMODE((tmp_path / "t" / "d" / "f").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "t" / "d").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "t").stat().st_mode) == 0o750  # new: 0777 less the umask


# --- folders merge, clashes change nothing -------------------------------------------


def test_a_folder_upload_merges_into_an_existing_folder(
    agent: AgentProcess, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    for name in ("keep", "same", "sub/a"):
        (dest / name).write_bytes(b"old")
    final = agent.put("dest", "tar", _tar({"same": b"new", "sub/b": b"new", "fresh/c": b"new"}))
    assert final.kind == Kind.RESULT, final
    assert _tree(dest) == {
        "keep": b"old",
        "same": b"new",
        "sub/a": b"old",
        "sub/b": b"new",
        "fresh/c": b"new",
    }
    assert _partials(tmp_path) == []


def test_a_clash_of_a_folder_with_a_file_fails_and_changes_nothing(
    agent: AgentProcess, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "x").write_bytes(b"a file")
    (dest / "keep").write_bytes(b"old")
    final = agent.put("dest", "tar", _tar({"keep": b"new", "x/y": b"new"}))
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "NotADirectoryError")
    assert final.payload["errno"] == errno.ENOTDIR
    assert _tree(dest) == {"x": b"a file", "keep": b"old"}
    assert _partials(tmp_path) == []


@pytest.mark.parametrize("how", ["cancel", "agent exits"])
def test_an_interrupted_folder_upload_leaves_the_target_as_it_was(
    agent: AgentProcess, tmp_path: Path, how: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "same").write_bytes(b"old")
    # Whole members, cut between them: an extraction would see a clean end.
    stream = _tar({"same": b"new", "new": b"new" * 4000}, end=False)
    request_id = agent.start(Kind.PUT, {"path": "dest", "kind": "tar", "mode": None})
    agent.send(Kind.PUT_CHUNK, request_id, {"data": stream})
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    if how == "cancel":
        agent.send(Kind.CANCEL, 0, {"target": request_id})
        assert agent.replies(request_id)[1].payload["type"] == "cancelled"
        wait_until(lambda: _partials(tmp_path) == [], what="the partial tree removed")
    else:
        agent.close()
        assert agent.proc.returncode == 0
    assert _tree(dest) == {"same": b"old"}
    assert _partials(tmp_path) == []


# --- a killed agent leaves nothing ---------------------------------------------------


def _start_partial_uploads(agent: AgentProcess, dest: Path) -> None:
    """A file upload and a folder upload, both begun and neither ended."""
    file_id = agent.start(Kind.PUT, {"path": str(dest / "big.bin"), "kind": "file", "mode": None})
    agent.send(Kind.PUT_CHUNK, file_id, {"data": b"x" * 100 * KIB})
    tree_id = agent.start(Kind.PUT, {"path": str(dest / "tree"), "kind": "tar", "mode": None})
    agent.send(Kind.PUT_CHUNK, tree_id, {"data": _tar({"a": b"a" * 100 * KIB}, end=False)})
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG  # both chunks were taken
    assert len(_partials(dest)) == 2


def test_a_sigkilled_agent_leaves_no_partial_upload(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    _start_partial_uploads(isolated_agent, dest)
    os.kill(isolated_agent.proc.pid, signal.SIGKILL)  # as the OOM killer does
    wait_until(lambda: os.listdir(dest) == [], what="the watchdog removed the partial uploads")


def test_the_next_agent_sweeps_what_a_killed_agent_and_watchdog_left(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    _start_partial_uploads(isolated_agent, dest)
    ledgers = tmp_path / "cache" / "actorcluster" / "partials"
    (dead_ledger,) = os.listdir(ledgers)
    family = [isolated_agent.proc.pid, *descendants(isolated_agent.proc.pid)]
    for pid in reversed(family):  # the watchdog first: nobody is left to clean up
        os.kill(pid, signal.SIGKILL)
    isolated_agent.proc.wait(timeout=10)
    assert wait_gone(family, timeout=10) == []
    assert len(_partials(dest)) == 2  # left behind
    successor = AgentProcess(
        cwd=str(tmp_path), env={"XDG_CACHE_HOME": str(tmp_path / "cache")}
    )  # it sweeps before it says HELLO
    try:
        assert os.listdir(dest) == []
        # The ledger goes once the dead agent's folders have (its grace is 0 here).
        wait_until(lambda: dead_ledger not in os.listdir(ledgers), what="the ledger removed")
    finally:
        successor.close()


def test_a_ledger_of_a_running_agent_is_left_alone(
    isolated_agent: AgentProcess, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    _start_partial_uploads(isolated_agent, dest)
    neighbour = AgentProcess(cwd=str(tmp_path), env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    neighbour.close()
    assert len(_partials(dest)) == 2  # still in progress: not swept
    isolated_agent.close()
    assert os.listdir(dest) == []
    assert os.listdir(tmp_path / "cache" / "actorcluster" / "partials") == []


# --- a full disk ---------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root: skipped without it)."""
    with mounted_tmpfs(tmp_path / "small") as mount:
        yield mount


def test_a_full_disk_fails_a_file_upload_with_enospc_and_leaves_nothing(
    agent: AgentProcess, small_disk: Path
) -> None:
    final = agent.put(str(small_disk / "big.bin"), "file", b"x" * 2 * 1024 * KIB)
    assert (final.kind, final.payload["errno"]) == (Kind.ERROR, errno.ENOSPC)
    assert "No space left on device" in final.payload["message"]
    assert os.listdir(small_disk) == []


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_fails_a_folder_upload_with_enospc_and_leaves_nothing(
    agent: AgentProcess, small_disk: Path, existing: bool
) -> None:
    target = small_disk / "tree"
    if existing:
        target.mkdir()
        (target / "keep").write_bytes(b"old")
    files = {f"part-{index}": os.urandom(400 * KIB) for index in range(4)}
    final = agent.put(str(target), "tar", _tar(files), chunk=64 * KIB)
    assert (final.kind, final.payload["errno"]) == (Kind.ERROR, errno.ENOSPC), final
    assert "No space left on device" in final.payload["message"]
    if existing:
        assert _tree(target) == {"keep": b"old"}
        assert os.listdir(target) == ["keep"]
    else:
        assert os.listdir(small_disk) == []
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
