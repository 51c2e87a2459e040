"""Groups that start degraded (``require=``) and pick their missing hosts up in the
background, and a group connect from asyncio that a cancel at any point undoes."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster import InvalidRuntimeError, Runtime, RuntimeGroup, RuntimeTask, UsageError
from actorcluster.supervisors import SupervisionTree, root_supervisor
from logcapture import captured_logs
from threads import leaked_threads
from waiting import wait_until

HOSTS = ["host-1", "host-2", "host-3"]


def _baseline() -> tuple[set[str], set[threading.Thread]]:
    """The actors and threads alive now (the library's root tree started first)."""
    root_supervisor()
    return {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}, set(threading.enumerate())


def _nothing_left(bed, actors_before, threads_before) -> None:
    """No actor, no thread of ours, no process on any host."""
    wait_until(
        lambda: {r.actor_urn for r in pykka.ActorRegistry.get_all()} <= actors_before,
        10,
        "every actor of the group stopped",
    )
    wait_until(lambda: not leaked_threads(threads_before), 10, "no thread left")
    for host in bed.hosts:
        wait_until(lambda h=host: h.session_pids() == [], 10, f"nothing left on {host.name}")


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(delay=st.floats(min_value=0.0, max_value=1.5))
def test_cancelling_a_group_connect_at_any_point_leaves_nothing_behind(ssh_bed, delay):
    actors_before, threads_before = _baseline()

    async def main() -> RuntimeGroup | None:
        connect = asyncio.ensure_future(
            RuntimeGroup.connect(hosts=HOSTS, connection_kwargs=ssh_bed.connection_kwargs)
        )
        await asyncio.sleep(delay)
        connect.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            return await connect  # done before the cancel came: the caller owns it
        return None

    group = asyncio.run(main())
    if group is not None:
        group.cleanup()
    _nothing_left(ssh_bed, actors_before, threads_before)


def test_a_bad_require_is_a_usage_error_before_anything_connects(ssh_bed):
    kwargs = ssh_bed.connection_kwargs
    for require in (0, 4, "some", True, 1.5):
        with pytest.raises(UsageError, match="require must be"):
            RuntimeGroup(hosts=HOSTS, connection_kwargs=kwargs, require=require)


def test_a_group_with_a_host_down_at_start_runs_on_the_others_and_picks_it_up(make_ssh_bed):
    bed = make_ssh_bed(3)
    down = bed.hosts[2]
    down.stop()
    kwargs = bed.connection_kwargs
    with pytest.raises(InvalidRuntimeError, match="host-3"):
        RuntimeGroup(hosts=HOSTS, connection_kwargs=kwargs)  # "all", lazycluster's way
    with pytest.raises(InvalidRuntimeError, match="host-3"):
        RuntimeGroup(hosts=HOSTS, connection_kwargs=kwargs, require=3)
    with (
        captured_logs() as logs,
        RuntimeGroup(hosts=HOSTS, connection_kwargs=kwargs, require="any") as group,
    ):
        assert group.hosts == ["host-1", "host-2"]
        assert group.pending_hosts == ["host-3"]
        tasks = group.execute_task(RuntimeTask("up").run_command("hostname"), broadcast=True)
        group.join()
        assert [t.exit_status for t in tasks] == [0, 0]
        spread = [group.execute_task(RuntimeTask(f"t{n}").run_command("true")) for n in range(4)]
        group.join()
        assert all(t.exit_status == 0 for t in spread)
        down.start()
        wait_until(lambda: "host-3" in group.hosts, 5, "host-3 joined within 5 s of its return")
        assert group.pending_hosts == []
        task = group.execute_task(RuntimeTask("there").run_command("echo hi"), host="host-3")
        assert task.future.get(timeout=30).execution_log == ["hi\n"]
    events = [(e["event"], e.get("host")) for e in logs if e["event"].startswith("group.host")]
    assert events == [("group.host.waiting", "host-3"), ("group.host.joined", "host-3")]


def test_a_group_stopped_while_a_host_is_pending_leaves_nothing(make_ssh_bed):
    bed = make_ssh_bed(2)
    bed.hosts[1].stop()
    actors_before, threads_before = _baseline()
    group = RuntimeGroup(
        hosts=["host-1", "host-2"], connection_kwargs=bed.connection_kwargs, require=1
    )
    assert group.pending_hosts == ["host-2"]
    group.cleanup()
    _nothing_left(bed, actors_before, threads_before)


def test_a_host_that_cannot_be_used_is_not_retried(ssh_bed):
    with (
        captured_logs() as logs,
        RuntimeGroup(
            hosts=["host-1", "hots-2"], connection_kwargs=ssh_bed.connection_kwargs, require="any"
        ) as group,
    ):
        assert group.hosts == ["host-1"]
        assert group.pending_hosts == []
    assert [e["host"] for e in logs if e["event"] == "group.host.gave_up"] == ["hots-2"]


def test_a_degraded_group_connects_from_asyncio_too(make_ssh_bed):
    bed = make_ssh_bed(2)
    bed.hosts[1].stop()

    async def main() -> list[str]:
        group = await RuntimeGroup.connect(
            hosts=["host-1", "host-2"], connection_kwargs=bed.connection_kwargs, require="any"
        )
        try:
            return group.hosts
        finally:
            await group.cleanup_async()

    assert asyncio.run(main()) == ["host-1"]


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(delay=st.floats(min_value=0.0, max_value=1.0))
def test_cancelling_a_runtime_connect_at_any_point_leaves_nothing_behind(ssh_bed, delay):
    actors_before, threads_before = _baseline()

    async def main() -> Runtime | None:
        connect = asyncio.ensure_future(
            Runtime.connect("host-1", connection_kwargs=ssh_bed.connection_kwargs)
        )
        await asyncio.sleep(delay)
        connect.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            return await connect
        return None

    runtime = asyncio.run(main())
    if runtime is not None:
        runtime.cleanup()
    _nothing_left(ssh_bed, actors_before, threads_before)


def test_stopping_a_services_tree_ends_the_background_connects(make_ssh_bed):
    bed = make_ssh_bed(2)
    bed.hosts[1].stop()
    actors_before, threads_before = _baseline()
    tree = SupervisionTree("service")
    tree.start()
    group = RuntimeGroup(
        hosts=["host-1", "host-2"],
        connection_kwargs=bed.connection_kwargs,
        require="any",
        supervisor=tree.ref,
    )
    assert group.pending_hosts == ["host-2"]
    tree.stop()  # the group's supervisor goes with it; its joiner stops trying
    wait_until(lambda: group.pending_hosts == [], 10, "no host is being connected any more")
    _nothing_left(bed, actors_before, threads_before)
