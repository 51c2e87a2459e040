"""Opt-in retry and failover: an idempotent task lost with its host is re-sent to a
reachable host of the group; work lost with its host fails typed (never a bare exit
-9); a command killed on a host that stays up is still the task's own failure."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from actorcluster import (
    HostUnreachableError,
    Runtime,
    RuntimeGroup,
    RuntimeTask,
    TaskCancelledError,
    TaskExecutionError,
    UsageError,
)
from logcapture import captured_logs
from waiting import wait_until


def test_retries_need_the_user_to_say_the_task_is_idempotent():
    with pytest.raises(UsageError, match="idempotent=True"):
        RuntimeTask("twice", retries=2)
    for bad in (-1, 1.5, True):
        with pytest.raises(UsageError, match="retries must be"):
            RuntimeTask("bad", retries=bad, idempotent=True)
    task = RuntimeTask("ok", retries=2, idempotent=True)
    assert (task.retries, task.idempotent) == (2, True)


def test_an_idempotent_task_lost_with_its_host_fails_over_to_another(make_ssh_bed, tmp_path):
    bed = make_ssh_bed(2)
    gate = tmp_path / "gate"
    command = (
        f"if [ -e {gate} ]; then echo done on $ACTORCLUSTER_HOST_TAG; else touch {gate}; "
        "echo started; sleep 60; fi"
    )
    kwargs = {**bed.connection_kwargs, "reconnect_wait": 1.0}
    with RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=kwargs) as group:
        for runtime in group.runtimes:
            runtime.add_env_variables({"ACTORCLUSTER_HOST_TAG": runtime.host})
        task = RuntimeTask("job", retries=2, idempotent=True).run_command(command)
        with captured_logs() as logs:
            group.execute_task(task)
            wait_until(lambda: task.execution_log == ["started\n"], 15, "the first attempt ran")
            first = task._host
            bed.hosts[int(first[-1]) - 1].stop()  # the host goes down under the task
            assert task.future.result(timeout=60) is task
        other = "host-2" if first == "host-1" else "host-1"
        assert task.execution_log == [f"done on {other}\n"]
        retries = [e for e in logs if e["event"] == "task.retrying"]
        assert [(e["host"], e["attempt"]) for e in retries] == [(first, 2)]


def test_work_lost_with_its_host_fails_as_host_unreachable(make_ssh_bed):
    bed = make_ssh_bed(1)
    kwargs = {**bed.connection_kwargs, "reconnect_wait": 1.0}
    with Runtime("host-1", connection_kwargs=kwargs) as runtime:
        future = runtime.execute_task(RuntimeTask("long").run_command("echo up; sleep 60"))
        wait_until(lambda: future._task.execution_log == ["up\n"], 15, "it started")
        bed.hosts[0].stop()  # sshd, the agent and the command: SIGKILL
        with pytest.raises(HostUnreachableError, match="host-1") as caught:
            future.result(timeout=60)
        assert not isinstance(caught.value, TaskExecutionError)


def test_a_command_killed_on_a_host_that_stays_up_is_the_tasks_own_failure(ssh_bed, tmp_path):
    marker = tmp_path / "pid"
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        future = runtime.execute_task(
            RuntimeTask("killed").run_command(f"echo $$ > {marker}; exec sleep 60")
        )
        wait_until(lambda: marker.exists() and marker.read_text().strip(), 15, "started")
        os.kill(int(marker.read_text()), signal.SIGKILL)
        with pytest.raises(TaskExecutionError) as caught:
            future.result(timeout=30)
        assert caught.value.exit_code == -9
        assert not isinstance(caught.value, HostUnreachableError)


def test_a_detached_await_stops_waiting_without_cancelling_the_work(ssh_bed, tmp_path):
    gate = tmp_path / "gate"
    command = f"echo waiting; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished"

    async def main(runtime: Runtime) -> None:
        future = runtime.execute_task(RuntimeTask("detached").run_command(command))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(future.detach(), 0.3)  # the handler gives up waiting
        assert not future.done()  # the work goes on
        assert not future.detach().cancel()  # a detached future cancels nothing
        gate.touch()
        task = await future
        assert task.execution_log == ["waiting\nfinished\n"]
        assert (await future.detach()) is task  # done already: the same outcome
        gate.unlink()
        undetached = runtime.execute_task(RuntimeTask("owned").run_command(command))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(undetached, 0.3)  # awaiting the future itself cancels
        with pytest.raises(TaskCancelledError):
            undetached.result(timeout=15)

    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        asyncio.run(main(runtime))


def test_a_group_sends_work_without_a_host_to_a_reachable_one(make_ssh_bed):
    bed = make_ssh_bed(2)
    kwargs = {**bed.connection_kwargs, "reconnect_wait": 1.0}
    with RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=kwargs) as group:
        bed.hosts[0].stop()
        wait_until(lambda: not group.get_runtime("host-1").is_connected, 15, "host-1 is lost")
        tasks = [group.execute_task(RuntimeTask(f"t{n}").run_command("true")) for n in range(4)]
        group.join()
        assert [(t._host, t.exit_status) for t in tasks] == [("host-2", 0)] * 4
