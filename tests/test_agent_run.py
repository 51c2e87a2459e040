"""RUN: streamed output, exit codes, literal env and cwd, concurrency, cancel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from actorcluster.remote.agent.frames import Kind
from proctree import alive, cmdline, wait_gone

if TYPE_CHECKING:
    from agent_harness import AgentProcess

WEIRD = 'it\'s "quoted" $(touch pwned) `touch pwned2` \\ ; | & ünïcødé 日本 *'


def test_run_streams_both_outputs_and_the_exit_code(agent: AgentProcess) -> None:
    out, err, final = agent.run("echo out; echo err >&2; exit 3")
    assert (out, err) == (b"out\n", b"err\n")
    assert (final.kind, final.payload) == (Kind.EXIT, {"code": 3})


def test_a_command_killed_by_a_signal_exits_with_the_negative_signal(agent: AgentProcess) -> None:
    _, _, final = agent.run("kill -9 $$")
    assert final.payload == {"code": -9}


def test_env_and_cwd_arrive_literally(agent: AgentProcess, tmp_path: Path) -> None:
    folder = tmp_path / WEIRD
    folder.mkdir()
    env = {"AC_WEIRD": WEIRD, "AC_EMPTY": ""}
    out, _, final = agent.run(
        'printf "%s|%s|" "$AC_WEIRD" "$AC_EMPTY"; pwd', env=env, cwd=str(folder)
    )
    assert final.payload == {"code": 0}
    assert out.decode() == f"{WEIRD}||{folder}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [WEIRD]  # nothing ran


def test_a_relative_cwd_starts_from_the_working_dir(agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert agent.run("pwd")[0] == f"{tmp_path}\n".encode()
    assert agent.run("pwd", cwd="sub")[0] == f"{tmp_path / 'sub'}\n".encode()


def test_a_missing_cwd_answers_an_error(agent: AgentProcess, tmp_path: Path) -> None:
    _, _, final = agent.run("true", cwd=str(tmp_path / "missing"))
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "FileNotFoundError")


def test_commands_read_an_empty_stdin(agent: AgentProcess) -> None:
    out, _, final = agent.run("cat; echo end")
    assert (out, final.payload) == (b"end\n", {"code": 0})


def test_large_output_arrives_whole_and_in_order(agent: AgentProcess) -> None:
    out, _, final = agent.run("seq 1 200000")
    assert final.payload == {"code": 0}
    assert out == "".join(f"{n}\n" for n in range(1, 200001)).encode()


def test_many_concurrent_runs_each_get_their_own_output(agent: AgentProcess) -> None:
    started = time.monotonic()
    ids = {agent.start(Kind.RUN, {"cmd": f"sleep 0.3; echo {n}", "env": {}}): n for n in range(30)}
    for request_id, n in ids.items():
        output, final = agent.replies(request_id)
        assert b"".join(frame.payload["data"] for frame in output) == f"{n}\n".encode()
        assert final.payload == {"code": 0}
    assert time.monotonic() - started < 5  # 30 x 0.3 s one after another would be 9 s


def test_run_without_streaming_sends_only_the_exit(agent: AgentProcess) -> None:
    out, err, final = agent.run("echo hidden; exit 4", stream=False)
    assert (out, err, final.payload) == (b"", b"", {"code": 4})


def test_setup_can_choose_the_shell(agent: AgentProcess) -> None:
    agent.result(Kind.SETUP, {"working_dir": None, "env": {}, "shell": "/bin/sh"})
    assert agent.run("echo $0")[0] == b"/bin/sh\n"


def test_cancel_kills_the_commands_process_group_with_its_children(agent: AgentProcess) -> None:
    request_id = agent.start(Kind.RUN, {"cmd": "sleep 100 & echo $$ $!; wait", "env": {}})
    shell, child = (int(pid) for pid in agent.next_frame(request_id).payload["data"].split())
    assert alive(shell)
    assert alive(child)
    agent.send(Kind.CANCEL, 0, {"target": request_id})
    _, final = agent.replies(request_id)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "cancelled")
    left = wait_gone([shell, child], timeout=5)
    # Seen once in ~15 full runs under load: one pid still alive after 5 s. Say what it
    # is, so the next failure explains itself (state, parent, command line).
    assert left == [], [(pid, _describe(pid)) for pid in left]
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    assert agent.queued(request_id) == []  # no EXIT after the cancel


def test_cancel_of_an_unknown_or_finished_request_is_ignored(agent: AgentProcess) -> None:
    request_id = agent.start(Kind.RUN, {"cmd": "true", "env": {}})
    assert agent.replies(request_id)[1].kind == Kind.EXIT
    agent.send(Kind.CANCEL, 0, {"target": request_id})
    agent.send(Kind.CANCEL, 0, {"target": 999_999})
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG
    assert agent.queued(request_id) == []
    assert agent.queued(999_999) == []


def test_a_background_child_holding_the_pipes_does_not_hold_back_the_exit(
    agent: AgentProcess,
) -> None:
    started = time.monotonic()
    out, _, final = agent.run("sleep 30 & echo $!")
    assert final.payload == {"code": 0}
    assert time.monotonic() - started < 3
    child = int(out)
    assert alive(child)
    agent.close()  # the agent kills what is left of the group when it exits
    assert wait_gone([child], timeout=5) == []


def _describe(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return f"stat={stat.rpartition(')')[2].split()[:3]} cmdline={cmdline(pid)!r}"
