"""The agent's start, PING, SETUP, protocol errors, and what a request costs."""

from __future__ import annotations

import os
import platform
import socket
import stat
import subprocess
import sys
from pathlib import Path

import cloudpickle

from actorcluster.remote.agent import frames
from actorcluster.remote.agent.frames import Kind
from agent_harness import AGENT_PYTHON, AgentProcess, measure_costs


def _call(agent: AgentProcess, function: object, **kwargs: object) -> object:
    value = agent.result(Kind.CALL, {"payload": cloudpickle.dumps((function, kwargs))})
    return cloudpickle.loads(value)


def test_the_agent_writes_the_ready_marker_then_hello(agent: AgentProcess, tmp_path: Path) -> None:
    assert agent.noise == b""
    assert agent.hello.kind == Kind.HELLO
    assert agent.hello.request_id == 0
    hello = dict(agent.hello.payload)
    session = hello.pop("session")
    executable = AGENT_PYTHON or sys.executable
    python = platform.python_version() if AGENT_PYTHON is None else hello["python"]
    assert hello == {
        "pid": agent.proc.pid,
        "python": python,
        "executable": executable,
        "cwd": str(tmp_path),
        "hostname": socket.gethostname(),
    }
    assert session["pid"] == agent.proc.pid
    assert len(session["secret"]) == 64
    assert os.stat(os.path.dirname(session["socket"])).st_mode & 0o777 == 0o700


def test_ping_answers_pong(agent: AgentProcess) -> None:
    output, final = agent.request(Kind.PING, {})
    assert (output, final.kind, final.payload) == ([], Kind.PONG, {"received": 0})


def test_an_unknown_request_kind_answers_a_protocol_error(agent: AgentProcess) -> None:
    _, final = agent.request(40, {})
    assert final.kind == Kind.ERROR
    assert final.payload["type"] == "ProtocolError"


def test_setup_makes_a_private_temporary_working_dir_with_a_base_env(
    agent: AgentProcess, tmp_path: Path
) -> None:
    target = tmp_path / "a" / "b c" / "work"
    env = {"AC_BASE": "from setup"}
    body = {"working_dir": str(target), "temporary": True, "env": env}
    assert agent.result(Kind.SETUP, body) == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    out, _, final = agent.run('pwd; printf %s "$AC_BASE"')
    assert (out, final.payload) == (f"{target}\n{env['AC_BASE']}".encode(), {"code": 0})
    assert _call(agent, lambda: (os.getcwd(), os.environ["AC_BASE"])) == (str(target), "from setup")
    assert agent.fs("abspath", path="x").payload["value"] == str(target / "x")


def test_setup_with_a_bad_env_answers_error(agent: AgentProcess) -> None:
    _, final = agent.request(Kind.SETUP, {"working_dir": None, "env": {"A": 1}})
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "TypeError")


def test_stray_writes_to_fd_1_never_corrupt_the_frame_stream(agent: AgentProcess) -> None:
    def scribble() -> str:
        os.write(1, b"garbage that is not a frame\n")
        subprocess.run(["echo", "child garbage"], check=True)  # inherits fd 1
        return "done"

    assert _call(agent, scribble) == "done"
    assert agent.request(Kind.PING, {})[1].kind == Kind.PONG


def test_the_agent_runs_as_a_private_package_without_actorcluster(tmp_path: Path) -> None:
    remote = Path(frames.__file__).parent
    boot = (
        "import sys, types; package = types.ModuleType('_acagent'); "
        "package.__path__ = [sys.argv[1]]; sys.modules['_acagent'] = package; "
        "import _acagent.main; _acagent.main.main()"
    )
    agent = AgentProcess(cwd=str(tmp_path), command=[sys.executable, "-c", boot, str(remote)])
    try:
        loaded = _call(agent, lambda: sorted({name.partition(".")[0] for name in sys.modules}))
        assert isinstance(loaded, list)
        assert "_acagent" in loaded
        assert "actorcluster" not in loaded
        out, _, final = agent.run("echo hi")
        assert (out, final.payload) == (b"hi\n", {"code": 0})
    finally:
        agent.close()


def test_per_request_costs_are_small(agent: AgentProcess) -> None:
    costs = measure_costs(agent, rounds=50)
    print("agent round trips, median ms:", {name: round(ms, 3) for name, ms in costs.items()})
    # Loose bounds: the machine is shared. Measured alone: ping 0.26, run 1.9, call 0.44.
    assert costs["ping"] < 20
    assert costs["run_true"] < 50
    assert costs["call_lambda"] < 20
