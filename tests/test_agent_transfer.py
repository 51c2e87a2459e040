"""PUT and GET: files and folder trees in chunks, round trips, failures, cancel."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent.frames import Frame, Kind
from actorcluster.remote.agent.landing import PartialTree

if TYPE_CHECKING:
    from pathlib import Path

    from agent_harness import AgentProcess

WEIRD = "we ird \"q\" 's' $(touch pwned) ü 日本"
MIB = 1024 * 1024


def _get(agent: AgentProcess, path: str) -> tuple[list[Frame], Frame]:
    return agent.request(Kind.GET, {"path": path})


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (relative) with its content, None for folders."""
    found: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as file:
                found[os.path.relpath(path, root)] = file.read()
    return found


def test_a_file_round_trips_in_chunks_with_its_mode(agent: AgentProcess, tmp_path: Path) -> None:
    data = os.urandom(2 * MIB + 123)
    final = agent.put(f"up/{WEIRD}", "file", data, mode=0o640)
    target = tmp_path / "up" / WEIRD
    assert (final.kind, final.payload) == (Kind.RESULT, {"value": len(data), "path": str(target)})
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(target.parent) == [WEIRD]  # no temporary file left
    chunks, final = _get(agent, str(target))
    assert [len(chunk.payload["data"]) for chunk in chunks] == [MIB, MIB, 123]
    assert chunks[0].payload["mode"] == 0o640
    assert all(chunk.payload["kind"] == "file" for chunk in chunks)
    assert b"".join(chunk.payload["data"] for chunk in chunks) == data
    assert final.payload == {"value": len(data)}


def test_an_empty_file_round_trips_as_one_empty_chunk(agent: AgentProcess, tmp_path: Path) -> None:
    assert agent.put("empty", "file", b"").payload["value"] == 0
    assert (tmp_path / "empty").read_bytes() == b""
    chunks, final = _get(agent, "empty")
    assert [chunk.payload["data"] for chunk in chunks] == [b""]
    assert final.payload == {"value": 0}


def test_uploading_over_a_file_replaces_it_and_keeps_its_mode(
    agent: AgentProcess, tmp_path: Path
) -> None:
    target = tmp_path / "script"
    target.write_text("old")
    target.chmod(0o700)
    assert agent.put("script", "file", b"new").kind == Kind.RESULT
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_a_folder_tree_round_trips(agent: AgentProcess, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / WEIRD / "deep" / "deeper").mkdir(parents=True)
    (source / "empty folder").mkdir()
    (source / "top.txt").write_text("top")
    (source / WEIRD / "binary").write_bytes(os.urandom(3 * MIB))
    (source / WEIRD / "deep" / "deeper" / "leaf").write_text("leaf")
    chunks, final = _get(agent, str(source))
    assert final.kind == Kind.RESULT
    assert {chunk.payload["kind"] for chunk in chunks} == {"tar"}
    stream = b"".join(chunk.payload["data"] for chunk in chunks)
    assert final.payload["value"] == len(stream)
    with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
        assert "top.txt" in archive.getnames()  # names are relative to the folder
    final = agent.put("copy", "tar", stream, chunk=MIB // 3)
    assert final.payload == {"value": len(stream), "path": str(tmp_path / "copy")}
    assert _tree(tmp_path / "copy") == _tree(source)


def test_getting_a_missing_path_answers_file_not_found(agent: AgentProcess, tmp_path: Path) -> None:
    chunks, final = _get(agent, "missing $(x)")
    assert chunks == []
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "FileNotFoundError")
    assert str(tmp_path / "missing $(x)") in final.payload["message"]


def test_uploading_a_file_onto_a_folder_answers_an_error(
    agent: AgentProcess, tmp_path: Path
) -> None:
    (tmp_path / "folder").mkdir()
    final = agent.put("folder", "file", b"data")
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "IsADirectoryError")


def test_a_broken_tar_upload_fails_once_and_drops_the_rest(
    agent: AgentProcess, tmp_path: Path
) -> None:
    request_id = agent.start(Kind.PUT, {"path": "dest", "kind": "tar", "mode": None})
    for _ in range(20):
        agent.send(Kind.PUT_CHUNK, request_id, {"data": b"this is no tar archive" * 1000})
    agent.send(Kind.PUT_END, request_id, {})
    _, final = agent.replies(request_id)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "ReadError")
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    assert agent.queued(request_id) == []
    assert os.listdir(tmp_path) == []  # nothing landed, no temporary folder left


def test_a_tar_member_escaping_the_folder_is_refused(agent: AgentProcess, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escaped")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    final = agent.put("dest", "tar", buffer.getvalue())
    assert final.kind == Kind.ERROR
    assert not (tmp_path / "escaped").exists()


def test_cancel_of_an_upload_discards_it(agent: AgentProcess, tmp_path: Path) -> None:
    request_id = agent.start(Kind.PUT, {"path": "target", "kind": "file", "mode": None})
    agent.send(Kind.PUT_CHUNK, request_id, {"data": b"partial"})
    agent.send(Kind.CANCEL, 0, {"target": request_id})
    _, final = agent.replies(request_id)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "cancelled")
    agent.send(Kind.PUT_CHUNK, request_id, {"data": b"late"})
    agent.send(Kind.PUT_END, request_id, {})
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    assert agent.queued(request_id) == []
    assert os.listdir(tmp_path) == []


def test_an_unfinished_upload_leaves_nothing_when_the_agent_exits(
    agent: AgentProcess, tmp_path: Path
) -> None:
    request_id = agent.start(Kind.PUT, {"path": "target", "kind": "file", "mode": None})
    agent.send(Kind.PUT_CHUNK, request_id, {"data": b"partial"})
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG  # the chunk is written
    assert len(os.listdir(tmp_path)) == 1  # the hidden temporary file
    agent.close()
    assert agent.proc.returncode == 0
    assert os.listdir(tmp_path) == []


def _archive(*members: tuple[str, str, str]) -> bytes:
    """A tar stream of (name, kind, link or content) members: kind "f", "l" or "h"."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "f":
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
            info.linkname = value
            archive.addfile(info)
    return buffer.getvalue()


def _extract(target: Path, stream: bytes) -> None:
    tree = PartialTree(str(target), umask=0o022)
    try:
        tree.extract(io.BytesIO(stream))
    except BaseException:
        tree.discard()
        raise
    tree.commit()


@pytest.mark.parametrize(
    "members",
    [
        [("../x", "f", "ok")],
        [("a/../../x", "f", "ok")],
        [("out", "l", "/tmp"), ("out/x", "f", "ok")],  # written through a link: refused
        [("hard", "h", "/etc/passwd")],
        [("hard", "h", "../outside")],
    ],
    ids=["dotdot", "nested-dotdot", "through-a-link", "hard-absolute", "hard-outside"],
)
def test_unsafe_tar_members_are_refused_and_nothing_lands(
    tmp_path: Path, members: list[tuple[str, str, str]]
) -> None:
    target = tmp_path / "dest"
    with pytest.raises(tarfile.TarError):
        _extract(target, _archive(*members))
    assert os.listdir(tmp_path) == []  # no target, no temporary folder


def test_links_stay_links_wherever_they_point(tmp_path: Path) -> None:
    target = tmp_path / "dest"
    stream = _archive(
        ("a/b", "f", "ok"),
        ("a/rel", "l", "b"),
        ("abs", "l", "/etc/passwd"),
        ("up", "l", "../../somewhere"),
        ("a/hard", "h", "a/b"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _extract(target, stream)
    assert (target / "a" / "b").read_bytes() == b"ok"
    assert os.readlink(target / "a" / "rel") == "b"
    assert os.readlink(target / "abs") == "/etc/passwd"
    assert os.readlink(target / "up") == "../../somewhere"
    assert (target / "a" / "hard").read_bytes() == b"ok"
    assert sorted(os.listdir(tmp_path)) == ["dest"]
