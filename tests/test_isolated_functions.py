"""``execute_function(..., isolated=True)``: the function runs in a child process of the
agent on a real sshd host: its own environment and working directory, every output,
a cancel that kills it; the default (a thread of the agent) is unchanged."""

from __future__ import annotations

import pytest

from actorcluster import Runtime, RuntimeTask, TaskCancelledError, TaskExecutionError
from proctree import alive
from waiting import wait_until


def where_am_i(name: str) -> tuple[int, str, str | None]:
    import os

    os.environ["ISOLATED_PROBE"] = name  # process-wide in the agent, not in a child
    os.chdir("/")
    print("python print")
    os.write(1, b"fd print\n")
    return os.getpid(), os.getcwd(), os.environ.get("ISOLATED_PROBE")


def agent_probe() -> tuple[int, str, str | None]:
    import os

    return os.getpid(), os.getcwd(), os.environ.get("ISOLATED_PROBE")


def raises() -> None:
    raise KeyError("isolated and raising")


def sleeps(path: str) -> None:
    import os
    import time

    with open(path, "w") as file:
        file.write(str(os.getpid()))
    time.sleep(60)


@pytest.fixture
def runtime(ssh_bed):
    with Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        yield rt


def test_an_isolated_function_has_its_own_process_env_and_cwd(runtime):
    agent_pid, agent_cwd, _ = next(runtime.execute_function(agent_probe).function_returns)
    task = runtime.execute_function(where_am_i, isolated=True, name="child")
    pid, cwd, probe = next(task.function_returns)
    assert pid != agent_pid
    assert (cwd, probe) == ("/", "child")
    output = "".join(task.execution_log)
    assert "python print\n" in output
    assert "fd print\n" in output  # fd 1 comes back too
    after = next(runtime.execute_function(agent_probe).function_returns)
    assert after == (agent_pid, agent_cwd, None)  # the child's chdir and env stayed there


def test_an_isolated_function_that_raises_fails_the_task_with_its_error(runtime):
    with pytest.raises(TaskExecutionError, match="isolated and raising"):
        runtime.execute_function(raises, isolated=True)


def test_cancelling_an_isolated_function_kills_its_process(runtime, tmp_path):
    marker = tmp_path / "pid"
    task = RuntimeTask("sleepy").run_function(sleeps, path=str(marker))
    task._isolate_last_step()
    future = runtime.execute_task(task)
    wait_until(lambda: marker.exists() and marker.read_text(), 15, "the function started")
    pid = int(marker.read_text())
    assert future.cancel()
    with pytest.raises(TaskCancelledError):
        future.result(timeout=15)
    wait_until(lambda: not alive(pid), 10, "the function's process was killed")
    assert runtime.echo("still here") == "still here\n"
