"""The runtime's supervision subtree, seen from the inside: its actors, their state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime, RuntimeTask, TaskCancelledError
from actorcluster.actors.agent import AgentActor
from actorcluster.actors.connection import ConnectionActor
from actorcluster.actors.task import TaskActor
from actorcluster.supervisors import root_supervisor, supervisor_proxy
from waiting import wait_until

if TYPE_CHECKING:
    import pykka


def _actor(ref: pykka.ActorRef):
    """The actor object behind a ref (to read its repr, as a debugger would)."""
    return ref._actor_weakref()


def _runtime_children(runtime: Runtime) -> dict[str, pykka.ActorRef]:
    root = supervisor_proxy(root_supervisor())
    runtime_ref = next(
        info.ref
        for info in root.which_children().get(timeout=10)
        if info.id == runtime._handle._child_id
    )
    return {
        info.id: info.ref for info in supervisor_proxy(runtime_ref).which_children().get(timeout=10)
    }


def test_a_runtime_is_tasks_processes_connection_agent_and_tunnels_in_that_order(ssh_bed):
    with Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        children = _runtime_children(rt)
        assert list(children) == ["tasks", "processes", "connection", "agent", "tunnels"]
        connection = children["connection"].proxy().statistics().get(timeout=10)
        assert connection.connected
        assert connection.cipher == "aes128-gcm@openssh.com"
        agent = children["agent"].proxy().statistics().get(timeout=10)
        assert agent.alive
        assert agent.pid == rt._handle.context.agent().hello["pid"]
        assert "host-3" in repr(_actor(children["agent"]))
        assert "CONNECTED" in repr(_actor(children["connection"]))


def test_a_running_task_is_a_task_actor_under_the_task_supervisor():
    with Runtime("localhost") as rt:
        future = rt.execute_task(RuntimeTask("watched").run_command("sleep 30"))
        tasks = supervisor_proxy(_runtime_children(rt)["tasks"]).which_children().get(timeout=10)
        (info,) = tasks
        assert info.ref.actor_class is TaskActor
        # A running task holds no thread: its inbox answers while its step runs.
        stats = info.ref.proxy().statistics().get(timeout=10)
        assert (stats.task, stats.steps, stats.done) == ("watched", 1, False)
        assert "watched" in repr(_actor(info.ref))
        rt.get_process("localhost::task::watched").terminate()
        assert future is not None
        with pytest.raises(TaskCancelledError):
            future.get(timeout=10)


def test_actor_classes_under_a_runtime_are_the_documented_ones(ssh_bed):
    with Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        children = _runtime_children(rt)
        assert isinstance(_actor(children["connection"]), ConnectionActor)
        assert isinstance(_actor(children["agent"]), AgentActor)


def test_a_reconnect_keeps_the_task_supervisor_and_a_waiting_task_gets_the_new_agent(
    make_ssh_bed,
):
    bed = make_ssh_bed(1)
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        tasks_before = _runtime_children(rt)["tasks"]
        bed.hosts[0].stop()
        wait_until(lambda: not rt.is_connected, what="the runtime noticed the host is gone")
        future = rt.execute_task(RuntimeTask("after").run_command("echo back"))
        bed.hosts[0].start()
        assert future is not None
        assert future.get(timeout=30).execution_log == ["back\n"]
        assert _runtime_children(rt)["tasks"] == tasks_before
