"""Nothing escapes a cancel: the agent is the subreaper of what it starts, and a
cancelled task takes every descendant with it (``setsid`` ones and orphans included),
on a real sshd host, leaving no process and no zombie behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actorcluster import Runtime, RuntimeTask, TaskCancelledError, TaskExecutionError
from proctree import alive, cmdline
from waiting import wait_until

AGENT_MARK = b"actorcluster.remote.agent"


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _agent_pid(host) -> int:
    agents = [pid for pid in host.session_pids() if AGENT_MARK in cmdline(pid)]
    parents = {pid: (_stat(pid) or ("?", 0))[1] for pid in agents}
    return next(pid for pid in agents if parents[pid] not in agents)  # not the watchdog


def _zombie_children(pid: int) -> list[int]:
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and _stat(int(name)) == ("Z", pid)
    ]


def _wait_pids(folder: Path, names: list[str]) -> list[int]:
    files = [folder / name for name in names]
    wait_until(lambda: all(f.exists() and f.read_text().strip() for f in files), 15, "started")
    return [int(f.read_text()) for f in files]


@pytest.fixture
def runtime(ssh_bed):
    with Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        yield rt


def test_a_cancelled_task_leaves_no_setsid_grandchild_or_orphan_behind(runtime, ssh_bed, tmp_path):
    agent = _agent_pid(ssh_bed.hosts[1])
    command = (
        f"setsid sh -c 'echo $$ > {tmp_path}/setsid; exec sleep 3001' & "  # own session
        f"(setsid sh -c 'echo $$ > {tmp_path}/orphan; exec sleep 3002' &); "  # orphaned
        f"sh -c 'echo $$ > {tmp_path}/child; exec sleep 3003' & "  # in the task's group
        "sleep 3004"
    )
    future = runtime.execute_task(RuntimeTask("escapes").run_command(command))
    pids = _wait_pids(tmp_path, ["setsid", "orphan", "child"])
    wait_until(lambda: _stat(pids[1]) is not None and _stat(pids[1])[1] == agent, 10, "adopted")
    assert future.cancel()
    with pytest.raises(TaskCancelledError):
        future.result(timeout=15)
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "every descendant ended")
    wait_until(lambda: not _zombie_children(agent), 10, "the agent reaped what it killed")
    assert runtime.echo("still serving") == "still serving\n"


def test_a_task_that_ends_by_itself_keeps_its_exit_status_with_the_agent_as_subreaper(runtime):
    future = runtime.execute_task(
        RuntimeTask("codes").run_command("(sleep 0.1 &); sh -c 'exit 3'; echo $?")
    )
    assert future.result(timeout=30).execution_log == ["3\n"]
    failing = runtime.execute_task(RuntimeTask("fails").run_command("exit 7"))
    with pytest.raises(TaskExecutionError, match="7"):
        failing.result(timeout=30)
