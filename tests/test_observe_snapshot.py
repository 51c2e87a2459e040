"""tree.snapshot(): the whole tree as JSON-ready plain data."""

from __future__ import annotations

import json

import pytest

from actorcluster import Runtime, RuntimeTask
from actorcluster.observe import snapshot
from actorcluster.supervisors import SupervisionTree
from waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def _walk(node):
    yield node
    for child in node["children"]:
        yield from _walk(child)


def test_a_snapshot_shows_runtime_task_and_process_as_plain_data():
    with Runtime("localhost") as runtime:
        future = runtime.execute_task(RuntimeTask("sleeper").run_command("echo a; sleep 600"))
        process = runtime.supervise("exec sleep 601", name="keeper")
        assert process.wait_running(10)
        wait_until(lambda: process.pid is not None, what="its pid")
        wait_until(lambda: any(t["task"] == "sleeper" for t in snapshot()["tasks"]))
        data = json.loads(json.dumps(snapshot()))
        future.cancel()

    nodes = list(_walk(data["tree"]))
    runtime_node = next(n for n in nodes if n["kind"] == "RuntimeSupervisor")
    assert runtime_node["host"] == "localhost" and runtime_node["state"] == "running"
    assert runtime_node["intensity_left"] == 30 and runtime_node["since"] > 0
    kinds = {n["kind"] for n in _walk(runtime_node)}
    assert {"TaskSupervisor", "ConnectionActor", "AgentActor", "TunnelSupervisor"} <= kinds
    assert {"ProcessSupervisor", "ProcessActor"} <= {n["kind"] for n in nodes}
    (task,) = [t for t in data["tasks"] if t["task"] == "sleeper"]
    assert task == {**task, "host": "localhost", "step": 0, "steps": 1}
    (local,) = [r for r in data["runtimes"] if r["host"] == "localhost" and r["state"] == "ready"]
    assert local["tasks_running"] == 1
    (keeper,) = [p for p in data["processes"] if p["name"] == "keeper"]
    assert keeper["status"] == "running" and keeper["restarts"] == 0 and keeper["pid"]


def test_a_services_own_tree_snapshots_itself():
    with SupervisionTree("svc") as tree:
        data = tree.snapshot()
    assert data["tree"]["kind"] == "RootSupervisor" and data["tree"]["name"] == "svc"
    assert data["tree"]["intensity_left"] == 100 and data["tree"]["children"] == []
