"""The public RuntimeHandle (``runtime.handle``): what groups, clusters and the CLI read
and start through it, on the local runtime (the agent as a local subprocess)."""

from __future__ import annotations

import pytest

from actorcluster import Runtime, RuntimeTask, TaskCancelledError, UsageError
from actorcluster.observe import RuntimeGone, RuntimeReady
from actorcluster.runtimes import RuntimeHandle
from actorcluster.runtimes.handle import START_TIMEOUT
from actorcluster.runtimes.options import build_options
from actorcluster.runtimes.supervised import ProcessSpec, RestartPolicy
from actorcluster.runtimes.task_ops import isolate_last_step, not_started, with_steps
from waiting import wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def runtime():
    rt = Runtime("localhost")
    yield rt
    rt.cleanup()


def test_the_handle_tells_what_its_runtime_is(runtime):
    handle = runtime.handle
    assert isinstance(handle, RuntimeHandle)
    assert handle.is_local and handle.address == "localhost" == handle.host
    assert handle.ready and handle.state == "ready" and runtime.is_connected
    assert handle.startup.done() and handle.working_dir == runtime.working_dir
    handle.client(5).ping().result(5)  # the agent client answers host requests


def test_running_task_count_counts_the_tasks_running_now(runtime):
    task = RuntimeTask("sleeps").run_command("sleep 30")
    future = runtime.submit(task)
    try:
        assert future is task.future
        wait_until(lambda: runtime.handle.running_task_count >= 1, 10, what="the task runs")
        assert task.name in [key.rpartition("::")[2] for key in runtime.get_processes()]
    finally:
        task.stop()
    with pytest.raises(TaskCancelledError):
        future.get(timeout=10)


def test_submit_without_as_process_is_not_a_process(runtime):
    task = RuntimeTask("quick").run_command("echo hi")
    future = runtime.submit(task, as_process=False)
    assert future.get(timeout=20) is task and task.execution_log == ["hi\n"]
    assert not any(key.endswith(task.name) for key in runtime.get_processes())


def test_a_process_starts_through_the_handle(runtime):
    spec = ProcessSpec(name="handle-sleeper", command="exec sleep 3141")
    process = runtime.handle.start_process(spec, RestartPolicy(max_restarts=0))
    try:
        assert process.wait_running(20) and process.pid
    finally:
        process.stop(10)
    assert process.status == "stopped"


def test_a_handle_started_alone_becomes_a_runtime(tmp_path):
    folder = tmp_path / "moved"
    handle = RuntimeHandle(build_options("localhost", None, None), None)
    with handle.events() as events:
        handle.start(START_TIMEOUT)
        runtime = Runtime.from_handle(handle, retain_tasks=3, working_dir=str(folder))
        try:
            assert runtime.handle is handle and runtime.working_dir == str(folder)
            assert folder.is_dir()
        finally:
            runtime.cleanup()
        assert handle.stopped and handle.state == "stopped" and not handle.ready
        kinds = {type(event) for event in events.drain()}
    assert {RuntimeReady, RuntimeGone} <= kinds
    with pytest.raises(UsageError):
        handle.client(0)


def test_what_groups_and_clusters_do_to_a_task():
    task = RuntimeTask("parts").run_command("echo a").run_function(len, obj=[1])
    isolate_last_step(task)
    steps = task.build().steps
    assert steps[-1].isolated
    first = with_steps(task, steps[:1])
    assert [type(s) for s in first.build().steps] == [type(steps[0])]
    assert len(task.build().steps) == 2  # the task itself keeps its steps
    error = UsageError("no runtime")
    not_started(task, "host-x", error)
    assert task.future is not None and task.future.exception(0) is error
