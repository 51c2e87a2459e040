"""The event stream: the bus and its subscriptions, and each lifecycle's sequence of
events on the local runtime (the documented one, exactly)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from actorcluster import Runtime, RuntimeTask, TaskCancelledError, TaskExecutionError
from actorcluster.observe import (
    BUS,
    EventBus,
    RuntimeReady,
    TaskFinished,
    TaskSubmitted,
    emit,
    event_types,
    subscribe,
)
from actorcluster.supervisors import SupervisionTree
from waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def kinds(events, *, task_id=None, prefix=""):
    """The kinds of ``events`` (of one task, or starting with ``prefix``), output left out."""
    return [
        e.kind
        for e in events
        if e.kind.startswith(prefix)
        and e.kind != "task.output"
        and (task_id is None or getattr(e, "task_id", None) == task_id)
    ]


def until(subscription, kind, timeout=20.0):
    """Every event up to and including the first of ``kind``."""
    seen = []
    for event in subscription.iter(timeout=timeout):
        seen.append(event)
        if event.kind == kind:
            return seen
    raise AssertionError(f"no {kind} within {timeout} s; saw {kinds(seen)}")


# --- the bus -------------------------------------------------------------------------


def test_nothing_is_built_while_nobody_listens():
    built = []
    assert not BUS.active
    emit(lambda **fields: built.append(fields))
    assert built == []
    with subscribe() as subscription:
        emit(RuntimeReady, host="h")
        assert subscription.get(1).host == "h"
    assert not BUS.active


def test_a_full_buffer_drops_the_oldest_and_counts_them():
    bus = EventBus()
    subscription = bus.subscribe(maxsize=3)
    for index in range(10):
        bus.publish(TaskSubmitted(host="h", task_id=index))
    assert subscription.dropped == 7 and subscription.received == 10
    assert [e.task_id for e in subscription.drain()] == [7, 8, 9]


def test_a_subscription_sees_only_its_hosts_and_its_cluster():
    bus = EventBus()
    subscription = bus.subscribe(hosts=["a"], cluster="c")
    bus.publish(RuntimeReady(host="a"))
    bus.publish(RuntimeReady(host="b"))
    from actorcluster.observe import ClusterStarting

    bus.publish(ClusterStarting(cluster="c"))
    bus.publish(ClusterStarting(cluster="d"))
    assert [(e.kind, e.host) for e in subscription.drain()] == [
        ("runtime.ready", "a"),
        ("cluster.starting", ""),
    ]


def test_thread_iteration_ends_after_its_timeout_and_close_ends_a_waiting_reader():
    bus = EventBus()
    subscription = bus.subscribe()
    assert list(subscription.iter(timeout=0.05)) == []
    got = []
    reader = threading.Thread(target=lambda: got.extend(subscription))
    reader.start()
    bus.publish(RuntimeReady(host="x"))
    wait_until(lambda: got, what="the reader got the event")
    subscription.close()
    reader.join(5)
    assert not reader.is_alive() and [e.host for e in got] == ["x"]


def test_a_reader_that_stops_iterating_loses_nothing():
    bus = EventBus()
    subscription = bus.subscribe()
    for index in range(5):
        bus.publish(TaskSubmitted(host="h", task_id=index))
    for event in subscription.iter(timeout=1):
        if event.task_id == 1:
            break
    assert [e.task_id for e in subscription.iter(timeout=0.05)] == [2, 3, 4]


def test_async_for_gets_events_published_from_other_threads():
    bus = EventBus()
    subscription = bus.subscribe()

    async def main():
        def publish():
            for index in range(3):
                bus.publish(TaskSubmitted(host="h", task_id=index))
            subscription.close()

        threading.Thread(target=publish).start()
        return [event.task_id async for event in subscription]

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [0, 1, 2]


def test_a_failing_listener_does_not_break_publishing():
    bus = EventBus()
    remove = bus.add_listener(lambda event: 1 / 0)
    subscription = bus.subscribe()
    bus.publish(RuntimeReady(host="h"))
    assert subscription.get(1) is not None
    remove()
    subscription.close()
    assert not bus.active


def test_every_event_is_json_ready_with_its_kind():
    import json

    for kind, cls in event_types().items():
        data = cls(host="h").to_dict()
        assert data["kind"] == kind and json.loads(json.dumps(data)) == data


# --- lifecycles on the local runtime ---------------------------------------------------


@pytest.fixture
def watched():
    """A subscription to every event, then a fresh local runtime."""
    with subscribe() as subscription:
        runtime = Runtime("localhost")
        try:
            yield runtime, subscription
        finally:
            runtime.cleanup()


def test_a_runtime_connects_becomes_ready_and_is_gone_after_cleanup(watched):
    runtime, subscription = watched
    seen = until(subscription, "runtime.ready")
    runtime.cleanup()
    seen += until(subscription, "runtime.gone")
    assert kinds(seen, prefix="runtime.") == ["runtime.connecting", "runtime.ready", "runtime.gone"]
    assert {e.host for e in seen} == {"localhost"}


def test_a_task_is_submitted_started_each_step_finished_then_finished(watched):
    runtime, subscription = watched
    task = RuntimeTask("two").run_command("echo one").run_command("echo two")
    runtime.execute_task(task, execute_async=False)
    seen = until(subscription, "task.finished")
    submitted = next(e for e in seen if isinstance(e, TaskSubmitted))
    assert submitted.steps == tuple(step.describe() for step in task._steps) or submitted.steps
    assert kinds(seen, task_id=submitted.task_id) == [
        "task.submitted",
        "task.started",
        "task.step_finished",
        "task.step_finished",
        "task.finished",
    ]
    output = "".join(e.text for e in seen if e.kind == "task.output")
    assert output == "one\ntwo\n"
    finished = seen[-1]
    assert isinstance(finished, TaskFinished) and finished.task == "two"


def test_a_failing_step_ends_the_task_as_failed(watched):
    runtime, subscription = watched
    task = RuntimeTask("fails").run_command("exit 3").run_command("echo never")
    with pytest.raises(TaskExecutionError):
        runtime.execute_task(task, execute_async=False)
    seen = until(subscription, "task.failed")
    assert kinds(seen, prefix="task.") == [
        "task.submitted",
        "task.started",
        "task.step_finished",
        "task.failed",
    ]
    step = next(e for e in seen if e.kind == "task.step_finished")
    assert step.ok is False and step.exit_code == 3


def test_a_cancelled_task_ends_as_cancelled(watched):
    runtime, subscription = watched
    future = runtime.execute_task(RuntimeTask("long").run_command("echo go; sleep 600"))
    until(subscription, "task.output")
    future.cancel()
    with pytest.raises(TaskCancelledError):
        future.get(timeout=20)
    seen = until(subscription, "task.cancelled")
    assert kinds(seen, prefix="task.") == ["task.step_finished", "task.cancelled"] or kinds(
        seen, prefix="task."
    ) == ["task.cancelled"]


def test_a_killed_local_agent_is_lost_then_ready_again(watched):
    runtime, subscription = watched
    until(subscription, "runtime.ready")
    pid = runtime._handle.context.session.hello["pid"]
    os.kill(pid, signal.SIGKILL)
    seen = until(subscription, "runtime.ready")
    assert kinds(seen, prefix="runtime.")[0] == "runtime.lost"
    assert kinds(seen, prefix="runtime.")[-1] == "runtime.ready"
    assert set(kinds(seen, prefix="runtime.")[1:-1]) <= {"runtime.connecting"}


def test_a_runtime_subscription_sees_only_its_host(watched):
    runtime, everything = watched
    with runtime.events() as mine:
        runtime.execute_task(RuntimeTask("t").run_command("true"), execute_async=False)
        assert {e.host for e in until(mine, "task.finished")} == {"localhost"}
    assert everything.received > 0


def test_a_stalled_subscriber_loses_events_counted_and_never_holds_a_task_up(watched):
    runtime, _ = watched
    with subscribe(maxsize=4) as stalled:
        futures = [
            runtime.execute_task(RuntimeTask(f"t{i}").run_command(f"echo {i}")) for i in range(20)
        ]
        for future in futures:
            future.get(timeout=30)
        # Every task ran to its end while nobody read: 20 tasks x 5 events, 4 kept.
        wait_until(lambda: stalled.received >= 100, what="every event offered")
        assert stalled.dropped == stalled.received - 4
        assert len(stalled.drain()) == 4


def test_a_supervision_tree_gives_a_subscription_to_everything():
    with SupervisionTree("svc") as tree, tree.events() as subscription:
        emit(RuntimeReady, host="anywhere")
        assert subscription.get(1).host == "anywhere"


def test_a_supervised_process_starts_exits_restarts_then_is_stopped(watched):
    runtime, subscription = watched
    process = runtime.supervise("echo up; exec sleep 605", name="p", backoff=None)
    until(subscription, "process.started")
    wait_until(lambda: process.pid is not None, what="its pid")
    os.kill(process.pid, signal.SIGKILL)
    seen = until(subscription, "process.restarted")
    process.stop()
    seen += until(subscription, "process.stopped")
    assert kinds(seen, prefix="process.") == [
        "process.exited",
        "process.restarted",
        "process.stopped",
    ]
    exited = next(e for e in seen if e.kind == "process.exited")
    assert (exited.code, exited.signal, exited.restarting) == (-9, 9, True)
    assert exited.last_lines == ("up",) and exited.incarnation == 1


def test_an_ssh_host_lost_and_back_reattaches_its_session(make_ssh_bed):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    with subscribe() as subscription, Runtime("host-1", connection_kwargs=bed.connection_kwargs):
        until(subscription, "runtime.ready")
        host.kill_sshd_sessions()  # the connection drops; the agent waits for a re-attach
        seen = until(subscription, "runtime.reattached", timeout=30)
    got = kinds(seen, prefix="runtime.")
    assert got[0] == "runtime.lost" and got[-1] == "runtime.reattached"
    assert set(got[1:-1]) == {"runtime.connecting"}
    assert seen[-1].down_seconds >= 0
