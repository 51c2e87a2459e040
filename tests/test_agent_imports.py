"""The agent's import hook, spoken to frame by frame: it asks for a module once whoever
imports it, waits a bounded time, runs what it is sent from memory (tracebacks show its
lines), and a refusal is the importing function's ModuleNotFoundError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cloudpickle
import pytest

from actorcluster.remote.agent.frames import Frame, Kind

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from agent_harness import AgentProcess


def _setup(agent: AgentProcess, timeout: float = 10.0) -> None:
    settings = {"enabled": True, "prefer_client": False, "timeout": timeout}
    body = {"working_dir": None, "temporary": False, "env": {}, "modules": settings}
    agent.result(Kind.SETUP, body)
    for _ in range(100):  # the agent numbers its own requests from 1: keep ours apart
        agent.next_id()


def _asked(agent: AgentProcess, *ids: int) -> list[Frame]:
    """MODULE requests already received with the agent's ids ``ids``."""
    found = [frame for rid in ids for frame in agent.queued(rid)]
    return [frame for frame in found if frame is not None and frame.kind == Kind.MODULE]


def _start_call(agent: AgentProcess, function: Callable[[], Any]) -> int:
    payload = cloudpickle.dumps((function, {}))
    return agent.start(Kind.CALL, {"payload": payload, "env": {}, "cwd": None})


def _module_request(agent: AgentProcess, request_id: int) -> Frame:
    """The agent's MODULE request with its own id ``request_id`` (agent ids start at 1)."""
    while True:
        frame = agent.next_frame(request_id)
        if frame.kind == Kind.MODULE:
            return frame


def _importer() -> Callable[[], str]:
    """A function importing a module the host lacks (nested: pickled by value, so the
    host is asked for nothing else)."""

    def import_missing() -> str:
        import agent_test_only_module

        return str(agent_test_only_module.WHERE)

    return import_missing


def test_an_import_waits_a_bounded_time_for_the_client_then_fails_clearly(
    agent: AgentProcess,
) -> None:
    _setup(agent, timeout=0.3)
    call = _start_call(agent, _importer())
    _, final = agent.replies(call)
    assert _module_request(agent, 1).payload == {"name": "agent_test_only_module"}
    assert final.kind == Kind.RAISED
    assert final.payload["type"] == "builtins.ModuleNotFoundError"
    assert "'agent_test_only_module'" in final.payload["traceback"]
    assert "no answer within 0.3 s" in final.payload["traceback"]


def test_concurrent_imports_ask_once_and_run_the_source_from_memory(
    agent: AgentProcess, tmp_path: Path
) -> None:
    _setup(agent)
    calls = [_start_call(agent, _importer()) for _ in range(4)]
    request = _module_request(agent, 1)
    source = b"import os\nWHERE = 'shipped'\n"
    origin = "/client/only/agent_test_only_module.py"
    answer = {"name": "agent_test_only_module", "found": True, "package": False}
    agent.send(
        Kind.MODULE_SOURCE, request.request_id, {**answer, "source": source, "origin": origin}
    )
    for call in calls:
        _, final = agent.replies(call)
        assert final.kind == Kind.RESULT, final
        assert cloudpickle.loads(final.payload["value"]) == "shipped"
    assert _asked(agent, 1, 2) == []
    assert list(tmp_path.iterdir()) == []  # nothing written where the agent works


def test_a_refusal_is_the_functions_module_not_found_error_and_is_kept(agent: AgentProcess) -> None:
    _setup(agent)
    reason = "No module named 'agent_test_only_module' on the host: it is compiled"
    for attempt in range(2):
        call = _start_call(agent, _importer())
        if attempt == 0:
            request = _module_request(agent, 1)
            agent.send(
                Kind.MODULE_SOURCE,
                request.request_id,
                {"name": "x", "found": False, "refused": reason},
            )
        _, final = agent.replies(call)
        assert final.kind == Kind.RAISED
        assert final.payload["type"] == "builtins.ModuleNotFoundError"
        assert reason in final.payload["traceback"]
    assert _asked(agent, 1, 2) == []  # asked once: the refusal is kept for the session


def test_a_shipped_module_shows_its_lines_in_tracebacks(agent: AgentProcess) -> None:
    _setup(agent)

    def fail() -> None:
        import agent_test_raiser

        agent_test_raiser.explode()

    call = _start_call(agent, fail)
    request = _module_request(agent, 1)
    source = b"def explode():\n    raise ValueError('from the shipped module')  # marker\n"
    body = {"name": "agent_test_raiser", "found": True, "package": False, "source": source}
    agent.send(Kind.MODULE_SOURCE, request.request_id, {**body, "origin": "/nowhere/raiser.py"})
    _, final = agent.replies(call)
    assert final.kind == Kind.RAISED
    assert "/nowhere/raiser.py" in final.payload["traceback"]
    assert "# marker" in final.payload["traceback"]


def test_without_modules_in_setup_the_agent_never_asks(agent: AgentProcess) -> None:
    call = _start_call(agent, _importer())
    _, final = agent.replies(call)
    assert final.kind == Kind.RAISED
    assert "No module named 'agent_test_only_module'" in final.payload["traceback"]
    assert _asked(agent, 1, 2) == []


@pytest.mark.parametrize("name", ["json", "_acagent.main", "cloudpickle"])
def test_the_standard_library_and_the_agents_own_modules_are_never_asked_for(
    agent: AgentProcess, name: str
) -> None:
    _setup(agent)

    def probe(name: str = name) -> bool:
        import importlib.util

        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    _, final = agent.replies(_start_call(agent, probe))
    assert final.kind == Kind.RESULT
    assert _asked(agent, 1, 2) == []
