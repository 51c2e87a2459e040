"""A group under real faults, and its place in the supervision tree: a host killed in
the middle of a broadcast fails only its own task; stopping a group stops exactly its
runtimes; a service owns several groups in its own tree."""

from __future__ import annotations

import pytest

from actorcluster import (
    HostUnreachableError,
    Runtime,
    RuntimeGroup,
    RuntimeTask,
    UsageError,
)
from actorcluster.supervisors import SupervisionTree
from waiting import wait_until

pytestmark = pytest.mark.slow

HOSTS = [f"host-{n}" for n in range(1, 6)]


def test_a_host_killed_mid_broadcast_fails_only_its_own_task(make_ssh_bed, tmp_path):
    bed = make_ssh_bed(5)
    gate = tmp_path / "gate"
    command = f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished"
    kwargs = {**bed.connection_kwargs, "reconnect_wait": 2.0}  # a task waits 2 s for host-3
    with RuntimeGroup(hosts=HOSTS, connection_kwargs=kwargs) as group:
        tasks = group.execute_task(RuntimeTask("long").run_command(command), broadcast=True)
        wait_until(lambda: all(t.execution_log == ["started\n"] for t in tasks), what="all started")
        bed.hosts[2].stop()  # host-3 goes down: its sshd and every session are killed
        with pytest.raises(HostUnreachableError) as caught:
            tasks[2].future.get(timeout=30)
        assert "host-3" in str(caught.value)
        assert not any(t.future.done() for i, t in enumerate(tasks) if i != 2)
        gate.touch()
        for index, task in enumerate(tasks):
            if index != 2:
                assert task.future.get(timeout=30) is task
                assert task.execution_log == ["started\nfinished\n"]
        # The next broadcast while host-3 is down: its copy fails, the others run.
        again = group.execute_task(RuntimeTask("again").run_command("echo ok"), broadcast=True)
        group.join()
        assert [t.exit_status for t in again] == [0, 0, 1, 0, 0]
        with pytest.raises(HostUnreachableError, match="host-3"):
            again[2].future.get(timeout=0)


def test_a_member_that_was_cleaned_up_fails_only_its_own_copy(ssh_bed):
    with RuntimeGroup(
        hosts=["host-1", "host-2"], connection_kwargs=ssh_bed.connection_kwargs
    ) as group:
        group.get_runtime("host-1").cleanup()
        tasks = group.execute_task(RuntimeTask("one").run_command("echo hi"), broadcast=True)
        with pytest.raises(UsageError, match="host-1"):
            tasks[0].future.get(timeout=10)
        assert tasks[1].future.get(timeout=30).execution_log == ["hi\n"]


def test_stopping_a_group_stops_exactly_its_runtimes(ssh_bed):
    kwargs = ssh_bed.connection_kwargs
    outsider = Runtime("host-3", connection_kwargs=kwargs)
    try:
        group = RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=kwargs)
        children = group._tree.children()
        assert len(children) == 2 and all(child.alive for child in children)
        supervisor = group.supervisor
        group.cleanup()
        assert not supervisor.is_alive()
        assert all(not rt.is_connected for rt in group.runtimes)
        assert outsider.echo("still here") == "still here\n"
    finally:
        outsider.cleanup()


def test_a_service_owns_several_groups_and_stopping_its_tree_stops_them_all(ssh_bed):
    kwargs = ssh_bed.connection_kwargs
    tree = SupervisionTree("service")
    tree.start()
    try:
        first = RuntimeGroup(hosts=["host-1"], connection_kwargs=kwargs, supervisor=tree.ref)
        second = RuntimeGroup(
            hosts=["host-2", "host-3"], connection_kwargs=kwargs, supervisor=tree.ref
        )
        children = {child.id for child in tree.proxy().which_children().get(timeout=10)}
        assert children == {first._tree.name, second._tree.name}
        tasks = second.execute_task(RuntimeTask("up").run_command("echo up"), broadcast=True)
        second.join()
        assert [t.exit_status for t in tasks] == [0, 0]
    finally:
        tree.stop()
    for runtime in [*first.runtimes, *second.runtimes]:
        wait_until(lambda rt=runtime: not rt.is_connected, what=f"{runtime.host} stopped")
    assert not first.supervisor.is_alive() and not second.supervisor.is_alive()
