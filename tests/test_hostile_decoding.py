"""Decoding cannot amplify: a hostile host's frame costs the client about its own size.

The host's "python3" is a script of ours that speaks the frame protocol, then answers
with 16 MiB frames that would unpickle to gigabytes (a run of ``EMPTY_SET`` or
``EMPTY_LIST`` opcodes). The client refuses them before building anything: its peak
memory (``VmHWM``, reset before) grows by far less than the frame, and nothing of the
frame stays reachable from the error a failed connect leaves the user.
"""

from __future__ import annotations

import gc
import os
import sys
import textwrap
import threading
import time
import types
from typing import TYPE_CHECKING

import pytest

from actorcluster import HostUnreachableError, InvalidRuntimeError, Runtime, RuntimeTask
from actorcluster.errors import AgentStartError
from agent_harness import SRC

if TYPE_CHECKING:
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
    BOMBS = {{
        "set bomb": b"\\x80\\x04" + b"\\x8f" * (16 << 20) + b".",
        "list bomb": b"\\x80\\x04(" + b"]" * (16 << 20) + b"l.",
    }}

    def raw(kind, rid, body):
        out.write(HEADER.pack(MAGIC, VERSION, kind, rid, len(body), zlib.crc32(body)) + body)
        out.flush()

    def send(kind, rid, payload):
        raw(kind, rid, pickle.dumps(payload, protocol=4))

    out.write(frames.READY_MARKER)
    if {first!r} == "trickle":  # a valid HELLO, a byte every half second
        hello = pickle.dumps({{"pid": os.getpid(), "python": "3", "cwd": "/"}}, protocol=4)
        frame = HEADER.pack(MAGIC, VERSION, Kind.HELLO, 0, len(hello), zlib.crc32(hello)) + hello
        for byte in frame:
            out.write(bytes([byte]))
            out.flush()
            time.sleep(0.5)
    elif {first!r}:
        raw(Kind.HELLO, 0, BOMBS[{first!r}])
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
        elif command in BOMBS:
            raw(Kind.OUTPUT, rid, BOMBS[command])
        else:
            send(Kind.RESULT, rid, {{"value": None}})
    """
).lstrip()

GROWTH_LIMIT = 200 * 1024 * 1024
"""Peak memory a 16 MiB hostile frame may cost (today: 3.9 GB for the set bomb)."""


def _fake(folder: Path, first: str = "") -> Path:
    path = folder / "python3"
    path.write_text(FAKE_AGENT.format(python=sys.executable, src=SRC, first=first))
    path.chmod(0o755)
    return path


def _reset_peak() -> int:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return it in bytes."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _peak()


def _peak() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _largest_reachable(root: object, limit: int = 200_000) -> int:
    """The size of the largest bytes-like object reachable from ``root`` (tracebacks,
    their frames' locals and causes included), looking at ``limit`` objects at most."""
    seen: set[int] = set()
    stack = [root]
    largest = 0
    while stack and len(seen) < limit:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType)):
            continue
        seen.add(id(item))
        if isinstance(item, (bytes, bytearray, memoryview)):
            largest = max(largest, len(item))
            continue
        if isinstance(item, (str, int, float)):
            continue
        if isinstance(item, types.FrameType):  # its locals, not its module's globals
            stack.extend(item.f_locals.values())
            stack.append(item.f_back)
        else:
            stack.extend(gc.get_referents(item))
    return largest


@pytest.mark.parametrize("bomb", ["set bomb", "list bomb"])
def test_a_16_mib_frame_that_would_unpickle_to_gigabytes_costs_the_client_little(
    ssh_bed: SshBed, tmp_path: Path, bomb: str
) -> None:
    kwargs = {**ssh_bed.connection_kwargs, "python": str(_fake(tmp_path))}
    hostile = Runtime("host-1", connection_kwargs=kwargs)
    try:
        before = _reset_peak()
        future = hostile.execute_task(RuntimeTask("attacked").run_command(bomb))
        with pytest.raises(HostUnreachableError, match="host-1") as caught:
            future.get(timeout=30)
        growth = _peak() - before
        print(f"{bomb}: {type(caught.value).__name__}, peak memory +{growth / 2**20:.0f} MiB")
        assert growth < GROWTH_LIMIT, f"{bomb} cost {growth / 2**20:.0f} MiB"
        assert "opcode" in str(caught.value)
    finally:
        hostile.cleanup()


def test_a_failed_connect_keeps_nothing_of_the_hostile_frame(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    kwargs = {**ssh_bed.connection_kwargs, "python": str(_fake(tmp_path, first="set bomb"))}
    before = _reset_peak()
    with pytest.raises(AgentStartError, match="host-1") as caught:
        Runtime("host-1", connection_kwargs=kwargs)
    growth = _peak() - before
    assert growth < GROWTH_LIMIT, f"the bomb cost {growth / 2**20:.0f} MiB"
    gc.collect()
    largest = _largest_reachable(caught.value)
    assert largest < 1024 * 1024, f"the error keeps {largest} bytes of the host's frame"


def test_a_trickled_hello_is_bounded_by_agent_start_timeout_and_leaves_nothing(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    python = str(_fake(tmp_path, first="trickle"))
    kwargs = {**ssh_bed.connection_kwargs, "python": python, "agent_start_timeout": 3}
    Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs).cleanup()  # warm-up
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    started = time.monotonic()
    with pytest.raises(InvalidRuntimeError, match="host-1") as caught:
        Runtime("host-1", connection_kwargs=kwargs)
    took = time.monotonic() - started
    print(f"trickled HELLO: {type(caught.value).__name__} after {took:.1f} s")
    assert took < 3 + 10, f"the start took {took:.0f} s with agent_start_timeout=3"
    deadline = time.monotonic() + 10  # the stream's threads end just after
    while time.monotonic() < deadline and (
        threading.active_count() > threads or len(os.listdir("/proc/self/fd")) > fds
    ):
        time.sleep(0.1)
    assert threading.active_count() <= threads
    assert len(os.listdir("/proc/self/fd")) <= fds
