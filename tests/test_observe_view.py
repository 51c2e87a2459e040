"""The web view's API (served by uvicorn, read with httpx): the token,
the state, a task's steps and output, the buttons, server-sent events, /metrics, and
``actorcluster observe``."""

from __future__ import annotations

import json
import signal

import pytest

from actorcluster import Runtime, RuntimeTask
from cli_runner import start_cli
from waiting import wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from actorcluster.observe.serve import serve  # noqa: E402

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def client():
    with (
        serve(token="secret") as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}",
            headers={"X-Observe-Token": "secret"},
            timeout=30,
        ) as http,
    ):
        yield http


@pytest.fixture
def runtime():
    with Runtime("localhost") as rt:
        yield rt


def test_every_route_needs_the_token():
    with (
        serve() as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as anonymous,
    ):
        for path in ("/", "/api/state", "/metrics", "/api/tasks/1", "/api/events"):
            assert anonymous.get(path).status_code == 403
        assert anonymous.post("/api/tasks/1/cancel").status_code == 403
        assert anonymous.get("/", params={"token": "wrong"}).status_code == 403
        assert anonymous.get(server.url).status_code == 200
        assert len(server.token) >= 20


def test_the_state_shows_the_runtime_and_a_task_with_its_steps_and_output(client, runtime):
    task = RuntimeTask("hello").run_command("echo hi there").run_command("true")
    runtime.execute_task(task, execute_async=False)
    wait_until(
        lambda: any(t["state"] == "finished" for t in client.get("/api/state").json()["tasks"])
    )
    state = client.get("/api/state").json()
    assert [r["state"] for r in state["snapshot"]["runtimes"] if r["host"] == "localhost"] == [
        "ready"
    ]
    (summary,) = [t for t in state["tasks"] if t["task"] == "hello"]
    detail = client.get(f"/api/tasks/{summary['task_id']}").json()
    assert [s["state"] for s in detail["steps"]] == ["ok", "ok"]
    assert detail["output"] == "hi there\n"
    assert "task.finished" in [e["kind"] for e in state["recent"]]


def test_the_cancel_button_cancels_a_running_task(client, runtime):
    future = runtime.execute_task(RuntimeTask("long").run_command("echo go; sleep 600"))
    wait_until(
        lambda: any(t["state"] == "running" for t in client.get("/api/state").json()["tasks"])
    )
    (task,) = [t for t in client.get("/api/state").json()["tasks"] if t["task"] == "long"]
    assert client.post(f"/api/tasks/{task['task_id']}/cancel").json() == {
        "ok": True,
        "result": True,
    }
    assert future.cancelled() or future.exception(timeout=20) is not None
    wait_until(lambda: client.get(f"/api/tasks/{task['task_id']}").json()["state"] == "cancelled")


def test_the_process_buttons_restart_and_stop_it_with_the_exits_shown(client, runtime):
    process = runtime.supervise("echo up; exec sleep 602", name="svc")
    assert process.wait_running(10)
    response = client.post("/api/processes/localhost/svc/restart")
    assert response.json()["ok"], response.text
    assert process.wait_restarted(1, 20)
    detail = client.get("/api/processes/localhost/svc").json()
    assert detail["restarts"] == 1 and detail["status"] == "running"
    assert client.post("/api/processes/localhost/svc/stop").json()["ok"]
    wait_until(lambda: process.status == "stopped", what="stopped")
    missing = client.post("/api/processes/localhost/nope/restart")
    assert missing.status_code == 409 and "no supervised process" in missing.json()["error"]


def test_metrics_parse_with_prometheus_clients_parser(client, runtime):
    from prometheus_client.parser import text_string_to_metric_families

    runtime.execute_task(RuntimeTask("m").run_command("true"), execute_async=False)
    text = client.get("/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"actorcluster_tasks", "actorcluster_runtimes", "actorcluster_restarts"} <= names


def test_a_real_server_streams_events_as_server_sent_events(runtime):
    with serve() as server, httpx.Client(timeout=20) as http:
        assert server.url.startswith("http://127.0.0.1:")
        events = f"http://127.0.0.1:{server.port}/api/events?token={server.token}"
        with http.stream("GET", events) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            runtime.execute_task(RuntimeTask("sse").run_command("echo streamed"))
            kinds = []
            for line in lines:
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    kinds.append(event["kind"])
                    if event["kind"] == "task.finished":
                        break
        assert kinds == [
            "task.submitted",
            "task.started",
            "task.output",
            "task.step_finished",
            "task.finished",
        ]


def test_the_observe_command_serves_the_view_of_its_hosts():
    process = start_cli("observe", "localhost")
    try:
        line = process.stdout.readline().decode()
        assert line.startswith("observer: http://127.0.0.1:"), line
        url = line.split(" ", 1)[1].strip()
        base, token = url.split("/?token=")
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "actorcluster observer" in page.text
        state = httpx.get(f"{base}/api/state", params={"token": token}, timeout=10).json()
        assert [r["state"] for r in state["snapshot"]["runtimes"]] == ["ready"]
        assert httpx.get(f"{base}/api/state", timeout=10).status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
    assert process.returncode in (0, 130), errors.decode()
