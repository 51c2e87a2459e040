"""CALL: functions run on the agent's threads, with their return, raise and prints."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import cloudpickle

from actorcluster.remote.agent.frames import Frame, Kind
from agent_harness import AgentProcess, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _call(
    agent: AgentProcess,
    function: Callable[..., Any],
    env: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[list[Frame], Frame]:
    body = {"payload": cloudpickle.dumps((function, kwargs)), "env": env or {}, "cwd": None}
    return agent.request(Kind.CALL, body)


def test_a_call_returns_the_functions_value(agent: AgentProcess) -> None:
    output, final = _call(agent, lambda x, y: {"sum": x + y}, x=40, y=2)
    assert (output, final.kind) == ([], Kind.RESULT)
    assert cloudpickle.loads(final.payload["value"]) == {"sum": 42}


def test_a_raising_call_reports_type_traceback_and_the_exception(agent: AgentProcess) -> None:
    class BadThingError(Exception):
        pass

    def explode() -> None:
        raise BadThingError("the bad thing")

    _, final = _call(agent, explode)
    assert final.kind == Kind.RAISED
    assert final.payload["type"].endswith("BadThingError")
    traceback = final.payload["traceback"]
    assert "in explode" in traceback
    assert "the bad thing" in traceback
    assert "remote/agent_call.py" not in traceback  # the agent's own frames are left out
    exc = cloudpickle.loads(final.payload["exc"])
    assert (type(exc).__name__, str(exc)) == ("BadThingError", "the bad thing")


def test_a_call_that_raises_an_unpicklable_exception_still_reports_it(agent: AgentProcess) -> None:
    def explode() -> None:
        raise RuntimeError(threading.Lock())

    _, final = _call(agent, explode)
    assert (final.kind, final.payload["exc"]) == (Kind.RAISED, None)
    assert final.payload["type"] == "builtins.RuntimeError"


def test_prints_of_a_call_arrive_as_output_frames_in_order(agent: AgentProcess) -> None:
    def chatty() -> int:
        print("hello")
        print("warning", file=sys.stderr)
        sys.stdout.write("no newline")
        sys.stdout.buffer.write(b" then bytes\n")
        threading.Thread(target=print, args=("from another thread",)).start()
        return 7

    output, final = _call(agent, chatty)
    assert cloudpickle.loads(final.payload["value"]) == 7
    assert [(f.payload["fd"], f.payload["data"]) for f in output] == [
        (1, b"hello\n"),
        (2, b"warning\n"),
        (1, b"no newline then bytes\n"),
    ]


def test_an_unpicklable_return_value_is_raised(agent: AgentProcess) -> None:
    _, final = _call(agent, threading.Lock)
    assert final.kind == Kind.RAISED
    assert final.payload["type"] == "builtins.TypeError"
    assert "pickle" in final.payload["traceback"]


def test_a_payload_that_does_not_unpickle_is_raised(agent: AgentProcess) -> None:
    _, final = agent.request(Kind.CALL, {"payload": b"not a pickle", "env": {}})
    assert final.kind == Kind.RAISED
    assert final.payload["type"] == "_pickle.UnpicklingError"


def test_a_calls_env_and_cwd_apply_during_the_call_only(
    agent: AgentProcess, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    function = cloudpickle.dumps((lambda: (os.environ.get("AC_X"), os.getcwd()), {}))
    value = agent.result(Kind.CALL, {"payload": function, "env": {"AC_X": "1"}, "cwd": "sub"})
    assert cloudpickle.loads(value) == ("1", str(tmp_path / "sub"))
    value = agent.result(Kind.CALL, {"payload": function, "env": {}})
    assert cloudpickle.loads(value) == (None, str(tmp_path))


def test_calls_run_concurrently(agent: AgentProcess) -> None:
    body = {"payload": cloudpickle.dumps((lambda: time.sleep(0.3), {})), "env": {}}
    started = time.monotonic()
    ids = [agent.start(Kind.CALL, body) for _ in range(10)]
    assert all(agent.replies(request_id)[1].kind == Kind.RESULT for request_id in ids)
    assert time.monotonic() - started < 2  # one after another: 3 s


def test_cancel_interrupts_a_running_call(agent: AgentProcess, tmp_path: Path) -> None:
    marker = tmp_path / "interrupted"

    def spin(path: str) -> None:
        print("started")
        try:
            while True:
                time.sleep(0.005)
        finally:
            with open(path, "w") as file:
                file.write("yes")

    body = {"payload": cloudpickle.dumps((spin, {"path": str(marker)})), "env": {}}
    request_id = agent.start(Kind.CALL, body)
    assert agent.next_frame(request_id).payload["data"] == b"started\n"
    agent.send(Kind.CANCEL, 0, {"target": request_id})
    _, final = agent.replies(request_id)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "cancelled")
    assert wait_until(marker.exists, timeout=5)
    _, final = _call(agent, lambda: "still serving")
    assert cloudpickle.loads(final.payload["value"]) == "still serving"
    assert agent.queued(request_id) == []
