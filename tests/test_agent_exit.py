"""The agent's exit: nothing it started or made temporarily is left on the host."""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING

from actorcluster.remote.agent import frames
from actorcluster.remote.agent.frames import Kind
from agent_harness import COMMAND, AgentProcess, agent_env, wait_until
from proctree import alive, wait_gone

if TYPE_CHECKING:
    from pathlib import Path


def _start_sleeper(agent: AgentProcess, cmd: str = "sleep 100 & echo $$ $!; wait") -> list[int]:
    """Start a shell with a sleeping child; return both pids once they run."""
    request_id = agent.start(Kind.RUN, {"cmd": cmd, "env": {}})
    pids = [int(pid) for pid in agent.next_frame(request_id).payload["data"].split()]
    assert all(alive(pid) for pid in pids)
    return pids


def test_closing_stdin_kills_commands_and_removes_temporary_folders(
    agent: AgentProcess, tmp_path: Path
) -> None:
    work = tmp_path / "work dir"
    agent.result(Kind.SETUP, {"working_dir": str(work), "temporary": True, "env": {}})
    scratch = agent.result(Kind.FS, {"op": "mkdtemp", "dir": str(tmp_path), "temporary": True})
    kept = agent.result(Kind.FS, {"op": "mkdtemp", "dir": str(tmp_path), "temporary": False})
    (work / "file").write_text("x")
    pids = _start_sleeper(agent)
    agent.close_stdin()
    assert agent.wait(timeout=10) == 0
    assert wait_gone(pids, timeout=5) == []
    assert not work.exists()
    assert sorted(str(path) for path in tmp_path.iterdir()) == [kept]
    assert scratch != kept


def test_sigterm_kills_commands_and_exits_cleanly(agent: AgentProcess) -> None:
    pids = _start_sleeper(agent)
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=10) == 0
    assert wait_gone(pids, timeout=5) == []


def test_a_command_ignoring_sigterm_is_killed_at_exit(agent: AgentProcess) -> None:
    pids = _start_sleeper(agent, "trap '' TERM; sleep 100 & echo $$ $!; wait")
    agent.close_stdin()
    assert agent.wait(timeout=10) == 0
    assert wait_gone(pids, timeout=5) == []


def test_sigint_neither_stops_the_agent_nor_is_ignored_by_commands(agent: AgentProcess) -> None:
    agent.proc.send_signal(signal.SIGINT)
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    out, _, _ = agent.run("grep SigIgn /proc/self/status")
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (signal.SIGINT - 1))


def test_a_client_that_stops_reading_makes_the_agent_clean_up_and_exit(tmp_path: Path) -> None:
    agent = subprocess.Popen(
        COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path, env=agent_env()
    )
    assert agent.stdin is not None
    assert agent.stdout is not None
    try:
        reader = frames.FrameReader(agent.stdout.read1)  # type: ignore[attr-defined]
        assert agent.stdout.read(len(frames.READY_MARKER)) == frames.READY_MARKER
        assert reader.read_frame() is not None  # HELLO
        run = {"cmd": "sleep 100 & echo $$ $! > pids.tmp; mv pids.tmp pids; wait", "env": {}}
        agent.stdin.write(frames.encode_frame(Kind.RUN, 1, run))
        agent.stdin.flush()
        pids_file = tmp_path / "pids"
        assert wait_until(pids_file.exists)
        pids = [int(pid) for pid in pids_file.read_text().split()]
        agent.stdout.close()  # the client is gone but the agent's stdin stays open
        agent.stdin.write(frames.encode_frame(Kind.PING, 2, {}))
        agent.stdin.flush()
        assert agent.wait(timeout=10) == 0
        assert wait_gone(pids, timeout=5) == []
    finally:
        agent.kill()
        agent.wait(timeout=5)
        agent.stdin.close()
