"""The engine at many tasks and many hosts: nothing lost, output linear and intact,
slow consumers isolated, parallel connects, bounded memory for services."""

from __future__ import annotations

import gc
import hashlib
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster import HostUnreachableError, InvalidRuntimeError, Runtime, RuntimeTask
from actorcluster.runtimes.ledger import TaskLedger
from waiting import wait_until


@pytest.fixture(scope="module")
def local():
    with Runtime("localhost") as rt:
        yield rt


def _value(i: int) -> int:
    return i * 7


@pytest.mark.slow
def test_ten_thousand_tasks_submitted_in_a_loop_all_resolve_with_their_results(ssh_bed):
    hosts = ["localhost", "host-1", "host-2"]
    connected = Runtime.connect_many(
        hosts, connection_kwargs=ssh_bed.connection_kwargs, retain_tasks=100
    )
    assert not connected.errors
    runtimes = [connected.runtimes[host] for host in hosts]
    try:
        futures = []
        for i in range(10_000):
            task = RuntimeTask(f"t{i}").run_function(_value, i=i)
            futures.append(runtimes[i % 3].execute_task(task))
        results = [next(future.get(timeout=120).function_returns) for future in futures]
        assert results == [_value(i) for i in range(10_000)]
    finally:
        for runtime in runtimes:
            runtime.cleanup()


def test_fifty_megabytes_of_output_arrive_intact_and_stream_while_the_command_runs(local):
    size = 50 * 2**20
    # A checksum of the output on the host, printed to stderr after the output.
    command = (
        f"python3 -c 'import sys, hashlib; d = bytes(range(97, 123)) * ({size} // 26 + 1); "
        f"d = d[:{size}]; sys.stdout.buffer.write(d); sys.stdout.flush(); "
        f'sys.stderr.write("sha=" + hashlib.sha256(d).hexdigest())\''
    )
    streamed = threading.Event()
    task = RuntimeTask("big").run_command("echo first; sleep 0.5").run_command(command)
    future = local.execute_task(task)
    assert future is not None
    wait_until(lambda: task.execution_log[:1] == ["first\n"], what="the first step's output, live")
    streamed.set()
    future.get(timeout=120)
    entry = task.execution_log[1]
    out, _, sha = entry.rpartition("sha=")
    assert len(out) == size
    assert hashlib.sha256(out.encode()).hexdigest() == sha


def test_a_slow_output_consumer_does_not_stall_other_tasks(local):
    released = threading.Event()

    class SlowStdout:
        def write(self, text: str) -> int:
            released.wait(20)  # the consumer is stuck until the other task finished
            return len(text)

        def flush(self) -> None:
            pass

    import sys

    real, sys.stdout = sys.stdout, SlowStdout()  # type: ignore[assignment]
    try:
        slow = local.execute_task(
            RuntimeTask("slow-consumer").run_command("for i in $(seq 200); do echo $i; done"),
            debug=True,
        )
        quick = local.execute_task(RuntimeTask("quick").run_command("echo quick"))
        assert quick is not None and slow is not None
        assert quick.get(timeout=10).execution_log == ["quick\n"]
        assert not slow.done()  # still stuck in its consumer
    finally:
        released.set()
        sys.stdout = real
    slow.get(timeout=30)


def test_connecting_many_at_once_reports_each_unreachable_host_by_name(ssh_bed):
    hosts = [f"host-{1 + i % 3}" for i in range(3)] + ["no-such-host.invalid", "host-x.invalid"]
    started = time.monotonic()
    connected = Runtime.connect_many(hosts, connection_kwargs=ssh_bed.connection_kwargs)
    try:
        assert sorted(connected.runtimes) == ["host-1", "host-2", "host-3"]
        assert sorted(connected.errors) == ["host-x.invalid", "no-such-host.invalid"]
        for host, error in connected.errors.items():
            assert isinstance(error, InvalidRuntimeError)
            assert host in str(error)
        assert all(rt.echo("up").strip() == "up" for rt in connected.runtimes.values())
        assert time.monotonic() - started < 60
    finally:
        for runtime in connected.runtimes.values():
            runtime.cleanup()


def test_the_retained_task_bound_keeps_the_latest_finished_tasks(local):
    runtime = Runtime("localhost", retain_tasks=3)
    try:
        runtime.execute_task(RuntimeTask("first").run_function(_value, i=-1), False)
        for i in range(10):
            runtime.execute_function(_value, i=i)  # all named execute-function-_value
        assert list(runtime.function_returns) == [_value(i) for i in (7, 8, 9)]
        with pytest.raises(ValueError, match="no task named"):
            runtime.execution_log("first")
        running = runtime.execute_task(RuntimeTask("long").run_command("sleep 30"))
        for i in range(5):
            runtime.execute_function(_value, i=i)
        assert runtime.execution_log("long") == [""]  # still running: never dropped
        assert running is not None
    finally:
        runtime.cleanup()


class _CountedTask:
    """A stand-in task that counts how often the ledger looks at it."""

    looks = 0

    def __init__(self) -> None:
        self.running = True

    @property
    def is_running(self) -> bool:
        _CountedTask.looks += 1
        return self.running


@settings(max_examples=20, deadline=None)
@given(
    retain=st.integers(0, 50),
    count=st.integers(500, 2000),
    pattern=st.lists(st.booleans(), min_size=1, max_size=12),
)
def test_a_bounded_ledger_keeps_the_bound_in_linear_time(retain, count, pattern):
    """However tasks finish, the ledger stays within twice its peak of running tasks
    plus the bound, running tasks are never dropped, and each add looks at a few tasks
    on average (many tasks in flight once made every add scan them all)."""
    ledger = TaskLedger(retain)
    tasks: list[_CountedTask] = []
    _CountedTask.looks, running, peak = 0, 0, 0
    for number in range(count):
        task = _CountedTask()
        ledger.add(task)  # type: ignore[arg-type]
        tasks.append(task)
        running += 1
        if pattern[number % len(pattern)] and tasks[len(tasks) // 2].running:
            tasks[len(tasks) // 2].running = False  # tasks finish out of order
            running -= 1
        peak = max(peak, running)
        assert len(ledger) <= max(2 * retain + 16, 2 * (peak + retain)) + 1
    assert _CountedTask.looks <= 8 * count + 100
    kept = ledger.tasks()
    assert all(task in kept for task in tasks if task.running)  # running ones never go


def test_a_bounded_runtime_holds_neither_the_process_entries_nor_the_actors_of_dropped_tasks(
    local,
):
    """A service's memory stays flat: the process table forgets a task the bound
    dropped, and a kept task holds nothing of its finished actor."""
    from actorcluster.actors.task import TaskActor

    runtime = Runtime("localhost", retain_tasks=5)
    try:
        for batch in range(3):
            futures = [
                runtime.execute_task(RuntimeTask(f"b{batch}-{i}").run_function(_value, i=i))
                for i in range(100)
            ]
            assert [future.get(timeout=60).execution_log for future in futures]
        runtime.execute_task(RuntimeTask("last").run_function(_value, i=0), False)
        assert len(runtime._tasks) <= 5 + 1
        assert len(runtime.get_processes()) <= 5 + 1
        gc.collect()
        actors = [actor for actor in gc.get_objects() if isinstance(actor, TaskActor)]
        assert len(actors) <= 5, f"{len(actors)} finished task actors still held"
    finally:
        runtime.cleanup()


def test_a_ledger_without_a_bound_keeps_everything_and_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="retain_tasks"):
        TaskLedger(-1)
    with pytest.raises(ValueError, match="retain_tasks"):
        TaskLedger(True)  # type: ignore[arg-type]


def test_a_task_started_while_the_host_is_down_fails_typed_naming_the_host(make_ssh_bed):
    bed = make_ssh_bed(1)
    runtime = Runtime("host-1", connection_kwargs={**bed.connection_kwargs, "reconnect_wait": 1.0})
    try:
        bed.hosts[0].stop()
        wait_until(lambda: not runtime.is_connected, what="the runtime noticed")
        future = runtime.execute_task(RuntimeTask("while-down").run_command("true"))
        assert future is not None
        with pytest.raises(HostUnreachableError, match="host-1"):
            future.get(timeout=30)
    finally:
        runtime.cleanup()
