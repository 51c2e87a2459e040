"""RuntimeGroup over five real sshd hosts: lazycluster's API, every operation on all
hosts at once, per-host results, live per-host output."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading

import pytest

from actorcluster import (
    FileTransferError,
    InvalidRuntimeError,
    Runtime,
    RuntimeGroup,
    RuntimeTask,
    TaskExecutionError,
    UsageError,
)
from sshbed import SshBed
from waiting import wait_until

HOSTS = [f"host-{n}" for n in range(1, 6)]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with SshBed(tmp_path_factory.mktemp("group_bed"), count=5) as five:
        yield five


@pytest.fixture(scope="module")
def group(bed):
    with RuntimeGroup(hosts=HOSTS, connection_kwargs=bed.connection_kwargs) as five:
        yield five


def test_a_group_of_hosts_has_lazyclusters_members_api(group):
    assert group.hosts == HOSTS
    assert group.runtime_count == 5
    assert [rt.host for rt in group.runtimes] == HOSTS
    assert group.contains_runtime("host-3") and not group.contains_runtime("host-9")
    assert group.get_runtime("host-2").host == "host-2"
    assert list(group.get_runtimes(include_hosts=["host-4", "host-1"])) == ["host-1", "host-4"]
    assert list(group.get_runtimes(exclude_hosts="host-1")) == HOSTS[1:]
    assert str(group).startswith("RuntimeGroup: Runtime: host-1, Runtime: host-2")


def test_bad_member_arguments_are_clear_value_errors(group, bed):
    with pytest.raises(ValueError, match="Not both or none"):
        RuntimeGroup()
    with pytest.raises(ValueError, match="Not both or none"):
        RuntimeGroup(runtimes=group.runtimes, hosts=["host-1"])
    with pytest.raises(UsageError, match="host-9"):
        group.get_runtime("host-9")
    with pytest.raises(UsageError, match="not both"):
        group.get_runtimes(include_hosts="host-1", exclude_hosts="host-2")
    with pytest.raises(UsageError, match="host-9"):
        group.get_runtimes(include_hosts=["host-9"])
    with pytest.raises(UsageError, match="already in the group"):
        RuntimeGroup(runtimes=[group.runtimes[0], group.runtimes[0]])
    with pytest.raises(UsageError, match="not both"):
        group.execute_task(RuntimeTask().run_command("true"), host="host-1", broadcast=True)


def test_a_broadcast_runs_one_copy_per_host_named_as_lazycluster_names_them(group):
    task = RuntimeTask("bcast").run_command("echo $WORKING_DIR")
    tasks = group.execute_task(task, broadcast=True, execute_async=False)
    assert tasks[0] is task
    assert [t.name for t in tasks] == ["bcast", "bcast-1", "bcast-2", "bcast-3", "bcast-4"]
    logs = [t.execution_log[0].strip() for t in tasks]
    assert logs == [rt.working_dir for rt in group.runtimes]
    assert len(set(logs)) == 5


def test_asynchronous_broadcast_reaches_every_future_and_the_group_joins(group):
    tasks = group.execute_task(RuntimeTask("async").run_function(os.getpid), broadcast=True)
    assert all(t.future is not None for t in tasks)
    group.join()
    pids = [next(t.function_returns) for t in tasks]
    assert len(set(pids)) == 5  # five agents, one per host


def test_functions_on_every_host_come_back_in_start_order(group):
    group.clear_tasks()
    group.execute_function(lambda: "first", host="host-5")
    group.execute_function(lambda x: x * 2, broadcast=True, x=21)
    assert list(group.function_returns) == ["first", 42, 42, 42, 42, 42]


def test_a_failing_host_in_a_synchronous_broadcast_raises_after_all_ran(group, tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    command = f'touch {done}/$WORKING_DIR_NAME; test "$WORKING_DIR_NAME" != host-3'
    for host, runtime in group.get_runtimes().items():
        runtime.add_env_variables({"WORKING_DIR_NAME": host})
    with pytest.raises(TaskExecutionError) as caught:
        group.execute_task(
            RuntimeTask("fail3").run_command(command), broadcast=True, execute_async=False
        )
    assert caught.value.host == "host-3"
    assert sorted(os.listdir(done)) == HOSTS


def test_a_task_goes_to_the_host_with_the_fewest_running(group, tmp_path):
    gate = tmp_path / "gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    busy = [group.execute_task(RuntimeTask(f"busy{n}").run_command(wait)) for n in range(4)]
    counts = [rt.alive_task_process_count for rt in group.runtimes]
    assert counts == [1, 1, 1, 1, 0]  # each went to an idle host, in order
    assert group.get_runtime().host == "host-5"
    gate.touch()
    for task in busy:
        task.future.get(timeout=30)


def test_broadcast_output_is_live_per_host_and_printed_with_the_host(group, tmp_path, capsys):
    gate = tmp_path / "gate"
    seen: dict[str, str] = {}
    lock = threading.Lock()

    def collect(host: str, text: str) -> None:
        with lock:
            seen[host] = seen.get(host, "") + text

    command = f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; printf 'done'"
    tasks = group.execute_task(
        RuntimeTask("live").run_command(command), broadcast=True, debug=True, on_output=collect
    )
    wait_until(lambda: all("started\n" in seen.get(h, "") for h in HOSTS), what="live output")
    assert not any(t.future.done() for t in tasks)
    assert all(t.execution_log == ["started\n"] for t in tasks)
    gate.touch()
    group.join()
    printed = capsys.readouterr().out.splitlines()
    for host in HOSTS:
        assert f"[{host}] started" in printed and f"[{host}] done" in printed
        assert seen[host] == "started\ndone"


def test_files_go_to_every_host_and_come_back_in_a_folder_per_host(group, tmp_path):
    source = tmp_path / "payload.txt"
    source.write_text("data\n")
    sent = group.send_file(str(source), "payload.txt", execute_async=False)
    assert len(sent) == 5
    for runtime in group.runtimes:
        runtime.execute_task(
            RuntimeTask("tag").run_command(f"echo {runtime.host} >> payload.txt"),
            execute_async=False,
        )
    tasks = group.get_file("payload.txt", str(tmp_path / "back"))
    group.join()
    assert all(t.future.get(timeout=0) for t in tasks)
    for host in HOSTS:
        assert (tmp_path / "back" / host / "payload.txt").read_text() == f"data\n{host}\n"
    with pytest.raises(FileTransferError):
        group.send_file(str(tmp_path / "missing"))


def test_environment_variables_apply_to_every_runtime(group):
    group.add_env_variables({"GROUP_VAR": "one"})
    tasks = group.execute_task(
        RuntimeTask("env").run_command("echo $GROUP_VAR"), broadcast=True, execute_async=False
    )
    assert [t.execution_log[0] for t in tasks] == ["one\n"] * 5
    group.set_env_variables({"ONLY": "this"})
    assert all(rt.env_variables["ONLY"] == "this" for rt in group.runtimes)
    assert all("GROUP_VAR" not in rt.env_variables for rt in group.runtimes)


def test_print_methods_print_plain_tables_off_a_terminal(group):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        group.print_hosts()
        group.print_runtime_info()
        group.print_log()
    text = out.getvalue()
    assert "host    state  working dir" in text
    assert all(f"{host}  ready" in text for host in HOSTS)
    assert "cpu cores" in text and "Execution log of runtime host-5:" in text


def test_runtimes_handed_in_get_the_groups_working_dir_and_keep_their_supervisor(bed, tmp_path):
    connected = Runtime.connect_many(HOSTS[:2], connection_kwargs=bed.connection_kwargs)
    runtimes = [connected.runtimes[h] for h in HOSTS[:2]]
    target = str(tmp_path / "shared-wd")
    group = RuntimeGroup(runtimes=runtimes, working_dir=target)
    try:
        assert [rt.working_dir for rt in runtimes] == [target, target]
        assert group._tree.children() == []  # they stay under their own parent
        tasks = group.execute_task(
            RuntimeTask("pwd").run_command("pwd"), broadcast=True, execute_async=False
        )
        assert [t.execution_log[0].strip() for t in tasks] == [target, target]
    finally:
        group.cleanup()
    assert all(not rt.is_connected for rt in runtimes)


def test_hosts_connect_all_at_once_and_a_bad_host_fails_the_group_leaving_nothing(bed):
    with pytest.raises(InvalidRuntimeError) as caught:
        RuntimeGroup(
            hosts=["host-1", "no-such-host.invalid"], connection_kwargs=bed.connection_kwargs
        )
    assert "no-such-host.invalid" in str(caught.value)


def test_add_and_remove_runtimes(bed):
    with RuntimeGroup(hosts=["host-1"], connection_kwargs=bed.connection_kwargs) as group:
        group.add_runtime("host-2")
        assert group.hosts == ["host-1", "host-2"]
        with pytest.raises(UsageError, match="already"):
            group.add_runtime("host-2")
        with pytest.raises(UsageError, match="refuse"):
            group.add_runtime("host-3", runtime=group.runtimes[0])
        group.remove_runtime("host-1")
        assert group.hosts == ["host-2"]
        with pytest.warns(UserWarning, match="host-1"):
            group.remove_runtime("host-1")


def test_a_group_is_created_from_asyncio_without_blocking_the_loop(bed):
    async def main() -> tuple[int, RuntimeGroup]:
        ticks = 0  # the loop keeps ticking while the hosts connect
        stop = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        group = await RuntimeGroup.connect(hosts=HOSTS[:3], connection_kwargs=bed.connection_kwargs)
        ticks_while_connecting = ticks
        tasks = group.execute_task(RuntimeTask("aw").run_command("echo x"), broadcast=True)
        finished = await asyncio.gather(*(t.future for t in tasks))
        stop.set()
        await ticker
        assert finished == tasks
        await group.cleanup_async()
        return ticks_while_connecting, group

    ticks, group = asyncio.run(main())
    assert ticks >= 2  # blocked, the ticker could not have run before connect returned
    assert all(not rt.is_connected for rt in group.runtimes)
