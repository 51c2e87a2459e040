"""A hostile host cannot freeze the client: its "python3" is a script of ours that
speaks the frame protocol, then sends a nesting bomb, a 1 GB length prefix, a bad exit
code or junk. Each is a typed error within a second, and another runtime's task
completes meanwhile."""

from __future__ import annotations

import sys
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster import ActorClusterError, HostUnreachableError, Runtime, RuntimeTask
from actorcluster.errors import AgentStartError, ProtocolError, TaskExecutionError
from agent_harness import SRC

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sshbed import SshBed

pytestmark = pytest.mark.slow

FAKE_AGENT = textwrap.dedent(
    """
    #!{python}
    import os, pickle, sys, tempfile, time, zlib
    sys.path.insert(0, {src!r})
    from actorcluster.remote.agent import frames
    from actorcluster.remote.agent.frames import HEADER, MAGIC, VERSION, Kind

    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    for _ in range(2):  # the real agent's second stage and its modules: ignored
        stdin.read(int(stdin.readline()))

    def raw(kind, rid, body, length=None):
        size = len(body) if length is None else length
        out.write(HEADER.pack(MAGIC, VERSION, kind, rid, size, zlib.crc32(body)) + body)
        out.flush()

    def send(kind, rid, payload):
        raw(kind, rid, pickle.dumps(payload, protocol=4))

    def bomb(levels):
        nested = []
        for _ in range(levels):
            nested = [nested, nested]
        return nested

    out.write(frames.READY_MARKER)
    if {bomb_first}:  # a bomb where HELLO should be: the error quoting it must stay cheap
        send(Kind.OUTPUT, 0, {{"fd": 1, "data": bomb(40)}})
        time.sleep(60)
    send(Kind.HELLO, 0, {{"pid": os.getpid(), "python": "3", "cwd": "/", "hostname": "evil"}})
    reader = frames.FrameReader(stdin.read1)
    while (frame := reader.read_frame()) is not None:
        kind, rid, body = frame
        command = body.get("cmd")
        if kind == Kind.PING:
            send(Kind.PONG, rid, {{}})
        elif kind == Kind.FS and body.get("op") == "mkdtemp":
            send(Kind.RESULT, rid, {{"value": tempfile.mkdtemp()}})
        elif kind == Kind.SETUP:
            send(Kind.RESULT, rid, {{"value": body["working_dir"]}})
        elif command == "nesting bomb":
            send(Kind.ERROR, rid, {{"type": "OSError", "message": bomb(40)}})
        elif command == "1 GB length prefix":
            raw(Kind.OUTPUT, rid, b"", length=2**30)
        elif command == "bad exit code":
            send(Kind.EXIT, rid, {{"code": "zero"}})
        elif command == "huge integer exit code":
            send(Kind.EXIT, rid, {{"code": 10**5000}})
        elif command == "junk":
            out.write(b"\\x00junk" * 1000)
            out.flush()
        elif command == "huge error message":
            send(Kind.ERROR, rid, {{"type": "X" * 10**6, "message": "M" * 8 * 2**20}})
        else:
            send(Kind.RESULT, rid, {{"value": None}})
    """
).lstrip()

CASES = {
    "nesting bomb": HostUnreachableError,
    "1 GB length prefix": HostUnreachableError,
    "bad exit code": ProtocolError,
    "huge integer exit code": HostUnreachableError,
    "junk": HostUnreachableError,
    "huge error message": TaskExecutionError,
}


def _fake(folder: Path, *, bomb_first: bool = False) -> Path:
    path = folder / "python3"
    path.write_text(FAKE_AGENT.format(python=sys.executable, src=SRC, bomb_first=bomb_first))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fake(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def steady(ssh_bed: SshBed) -> Iterator[Runtime]:
    """A runtime on a well-behaved host, for the work that must go on meanwhile."""
    rt = Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.mark.parametrize("attack", list(CASES))
def test_a_hostile_reply_is_a_typed_error_at_once_and_other_runtimes_go_on(
    ssh_bed: SshBed, fake_python: Path, steady: Runtime, attack: str
) -> None:
    kwargs = {
        **ssh_bed.connection_kwargs,
        "python": str(fake_python),
        "heartbeat_timeout": 60,  # only decoding can catch it this fast
    }
    hostile = Runtime("host-1", connection_kwargs=kwargs)
    try:
        work = steady.execute_task(RuntimeTask("steady").run_command("sleep 1; echo steady"))
        started = time.monotonic()
        future = hostile.execute_task(RuntimeTask("attacked").run_command(attack))
        with pytest.raises(ActorClusterError) as caught:
            future.get(timeout=5)
        took = time.monotonic() - started
        assert isinstance(caught.value, CASES[attack]), repr(caught.value)
        assert "host-1" in str(caught.value)
        assert len(str(caught.value)) < 20_000  # a host's text is cut before formatting
        print(f"{attack}: {type(caught.value).__name__} after {took * 1000:.0f} ms")
        assert work.get(timeout=30).execution_log == ["steady\n"]
    finally:
        hostile.cleanup()


def test_a_bomb_instead_of_hello_is_a_typed_start_error_at_once(
    ssh_bed: SshBed, tmp_path: Path, steady: Runtime
) -> None:
    kwargs = {**ssh_bed.connection_kwargs, "python": str(_fake(tmp_path, bomb_first=True))}
    work = steady.execute_task(RuntimeTask("steady").run_command("sleep 1; echo steady"))
    started = time.monotonic()
    with pytest.raises(AgentStartError, match="host-1") as caught:
        Runtime("host-1", connection_kwargs=kwargs)
    print(
        f"bomb before HELLO: {type(caught.value).__name__} after {time.monotonic() - started:.1f} s"
    )
    assert "nests deeper" in str(caught.value)
    assert work.get(timeout=30).execution_log == ["steady\n"]
