"""Futures a service and a notebook can rely on: cancellation that reaches the host,
fan-in over many futures, timeouts that are TimeoutErrors, asyncio without blocking,
logs through the standard loggers, errors that say what to do."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pykka
import pytest

from actorcluster import (
    FutureTimeoutError,
    InvalidRuntimeError,
    Runtime,
    RuntimeTask,
    TaskCancelledError,
    UsageError,
)
from actorcluster.futures import FIRST_COMPLETED, as_completed, wait
from proctree import alive
from waiting import wait_until


@pytest.fixture(params=["localhost", "host-1"])
def runtime(request, ssh_bed):
    kwargs = None if request.param == "localhost" else ssh_bed.connection_kwargs
    with Runtime(request.param, connection_kwargs=kwargs) as rt:
        yield rt


def _sleeper(runtime: Runtime, tmp_path, name: str = "sleeper"):
    marker = tmp_path / f"{name}.pid"
    task = RuntimeTask(name).run_command(f"echo $$ > {marker}; exec sleep 60")
    future = runtime.execute_task(task)
    wait_until(lambda: marker.exists() and marker.read_text().strip(), what="the command started")
    return task, future, int(marker.read_text())


def test_cancel_kills_the_remote_command_and_ends_the_task_as_cancelled(runtime, tmp_path):
    task, future, pid = _sleeper(runtime, tmp_path)
    assert "pending" in repr(future) and "sleeper" in repr(future) and runtime.host in repr(future)
    assert future.cancel()
    with pytest.raises(TaskCancelledError):
        future.result(timeout=10)
    assert future.cancelled() and "cancelled" in repr(future)
    wait_until(lambda: not alive(pid), what="the remote command was killed")
    assert not task.is_running
    assert not future.cancel()  # done: nothing to cancel


def test_an_asyncio_timeout_cancels_the_task_on_the_host(runtime, tmp_path):
    async def main() -> None:
        task, future, pid = _sleeper(runtime, tmp_path)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(future, 0.5)
        wait_until(lambda: not alive(pid), what="the remote command was killed")
        assert not task.is_running

    asyncio.run(main())


def test_a_timeout_is_a_timeout_error_and_a_pykka_timeout(runtime, tmp_path):
    _, future, _ = _sleeper(runtime, tmp_path)
    with pytest.raises(FutureTimeoutError) as caught:
        future.get(timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, pykka.Timeout)
    assert future.running()
    future.cancel()


def test_as_completed_over_many_futures_across_hosts_yields_each_once(ssh_bed):
    hosts = ["localhost", "host-1", "host-2"]
    connected = Runtime.connect_many(hosts, connection_kwargs=ssh_bed.connection_kwargs)
    runtimes = list(connected.runtimes.values())
    try:
        futures = [
            runtimes[i % 3].execute_task(RuntimeTask(f"t{i}").run_function(lambda i=i: i))
            for i in range(200)
        ]
        seen = [next(f.result().function_returns) for f in as_completed(futures, timeout=120)]
        assert sorted(seen) == list(range(200))
        done, not_done = wait(futures, timeout=10)
        assert len(done) == 200 and not not_done
    finally:
        for rt in runtimes:
            rt.cleanup()


def test_wait_returns_at_the_first_completed(runtime, tmp_path):
    _, slow, _ = _sleeper(runtime, tmp_path)
    quick = runtime.execute_task(RuntimeTask("quick").run_command("true"))
    done, not_done = wait([slow, quick], timeout=10, return_when=FIRST_COMPLETED)
    assert done == {quick} and not_done == {slow}
    with pytest.raises(FutureTimeoutError):
        list(as_completed([slow], timeout=0.2))
    slow.cancel()


CLIENT = textwrap.dedent(
    """
    import sys
    from actorcluster import Runtime, RuntimeTask
    host, config, marker = sys.argv[1:4]
    kwargs = None if host == "localhost" else {"ssh_config_path": config}
    rt = Runtime(host, connection_kwargs=kwargs)
    task = RuntimeTask("sync").run_command(f"echo $$ > {marker}; exec sleep 60")
    try:
        rt.execute_task(task, execute_async=False)
    except KeyboardInterrupt:
        print("interrupted", task.is_running, task.process, flush=True)
    rt.cleanup()
    """
)


@pytest.mark.parametrize("host", ["localhost", "host-2"])
def test_ctrl_c_during_a_synchronous_task_stops_it_on_the_host(ssh_bed, tmp_path, host):
    marker = tmp_path / "sync.pid"
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, host, str(ssh_bed.ssh_config), str(marker)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_until(lambda: marker.exists() and marker.read_text().strip(), 30, "it started")
        pid = int(marker.read_text())
        client.send_signal(signal.SIGINT)
        out, _ = client.communicate(timeout=30)
        assert "interrupted False" in out
        wait_until(lambda: not alive(pid), what="the remote command was killed")
    finally:
        client.kill()
        client.wait(timeout=10)


GROUP_CLIENT = textwrap.dedent(
    """
    import sys
    from actorcluster import RuntimeGroup, RuntimeTask
    config, marker = sys.argv[1:3]
    group = RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs={"ssh_config_path": config})
    task = RuntimeTask("sync").run_command(f"echo $$ >> {marker}; exec sleep 60")
    try:
        group.execute_task(task, broadcast=True, execute_async=False)
    except KeyboardInterrupt:
        print("interrupted", [t.is_running for t in group._ledger.tasks()], flush=True)
    group.cleanup()
    """
)


def test_ctrl_c_during_a_synchronous_group_broadcast_stops_it_on_every_host(ssh_bed, tmp_path):
    marker = tmp_path / "group.pids"
    client = subprocess.Popen(
        [sys.executable, "-c", GROUP_CLIENT, str(ssh_bed.ssh_config), str(marker)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        started = lambda: marker.exists() and len(marker.read_text().split()) == 2  # noqa: E731
        wait_until(started, 30, "both hosts started")
        pids = [int(pid) for pid in marker.read_text().split()]
        client.send_signal(signal.SIGINT)
        out, _ = client.communicate(timeout=30)
        assert "interrupted [False, False]" in out
        wait_until(lambda: not any(alive(pid) for pid in pids), what="both commands were killed")
    finally:
        client.kill()
        client.wait(timeout=10)


def test_a_runtime_is_created_and_cleaned_up_from_asyncio_without_blocking_the_loop(ssh_bed):
    async def main() -> list[float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        async with await Runtime.connect(
            "host-3", connection_kwargs=ssh_bed.connection_kwargs
        ) as rt:
            task = await rt.execute_task(RuntimeTask("async").run_command("echo hi"))
            assert task.execution_log == ["hi\n"]
        beat.cancel()
        return ticks

    ticks = asyncio.run(main())
    assert len(ticks) > 5  # the loop kept turning while the runtime connected


def test_a_connect_from_asyncio_fails_typed():
    async def main() -> None:
        with pytest.raises(InvalidRuntimeError, match=r"no-such-host\.invalid"):
            await Runtime.connect("no-such-host.invalid")

    asyncio.run(main())


def test_a_typo_in_a_host_name_lists_the_configured_hosts(ssh_bed):
    with pytest.raises(InvalidRuntimeError) as caught:
        Runtime("hots-1", connection_kwargs=ssh_bed.connection_kwargs)
    message = str(caught.value)
    assert f"hots-1 is not a Host in {ssh_bed.ssh_config}" in message
    assert message.index("host-1") < message.index("host-2")  # the closest first
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_using_a_runtime_after_cleanup_is_a_usage_error():
    runtime = Runtime("localhost")
    runtime.cleanup()
    with pytest.raises(UsageError, match="cleaned up"):
        runtime.execute_task(RuntimeTask().run_command("true"))


@pytest.mark.slow
def test_a_host_down_for_a_while_is_two_warnings_and_the_logging_level_silences_them(
    make_ssh_bed, caplog
):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    caplog.set_level(logging.WARNING, logger="actorcluster")
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        host.stop()
        wait_until(lambda: not rt.is_connected, 30, "the host is noticed gone")
        time.sleep(12)  # the outage, ~8 reconnects: the library must stay quiet all along
        host.start()
        rt.wait_ready(timeout=60)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.event for r in warnings] == ["runtime.host_lost", "runtime.host_back"]
        assert warnings[1].fields["attempts"] > 1 and warnings[1].fields["down_seconds"] >= 12
        caplog.clear()
        logging.getLogger("actorcluster").setLevel(logging.ERROR)
        try:
            host.stop()
            wait_until(lambda: not rt.is_connected, 30, "gone again")
            host.start()
            rt.wait_ready(timeout=60)
        finally:
            logging.getLogger("actorcluster").setLevel(logging.NOTSET)
        assert not [r for r in caplog.records if r.name.startswith("actorcluster")]
