"""``AgentTransport``: how a runtime's agent is started and reached. A local agent runs
over pipes (and cannot be re-attached), an SSH one over the runtime's connection; the
agent actor never asks which one it has."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime
from actorcluster.actors.context import RuntimeContext
from actorcluster.actors.transports import LocalTransport, SshTransport, transport_for
from actorcluster.errors import AgentStartError
from actorcluster.remote import AgentSession, stage_two
from actorcluster.runtimes.options import build_options

if TYPE_CHECKING:
    from sshbed import SshBed

ROOT = Path(__file__).resolve().parents[1] / "src" / "actorcluster"
WAIT = 30.0


def test_a_local_transport_starts_an_agent_over_pipes_and_cannot_reattach() -> None:
    context = RuntimeContext(build_options("localhost", None, None))
    transport = transport_for(context)
    assert isinstance(transport, LocalTransport)
    assert transport.session_grace == 0.0
    session = AgentSession("localhost", grace=transport.session_grace)
    try:
        hello = session.start(transport.open_agent(), stage_two().wire_bytes(), WAIT)
        assert isinstance(hello.get("pid"), int)
        assert session.alive
    finally:
        session.close("test over")
    with pytest.raises(AgentStartError, match="cannot be re-attached"):
        transport.reattach("/nowhere")


def test_an_ssh_transport_needs_the_runtimes_connection(ssh_bed: SshBed) -> None:
    options = build_options("host-1", None, ssh_bed.connection_kwargs)
    context = RuntimeContext(options)
    transport = transport_for(context)
    assert isinstance(transport, SshTransport)
    assert transport.session_grace == options.session_grace
    with pytest.raises(AgentStartError, match="no SSH connection"):
        transport.open_agent()
    with pytest.raises(AgentStartError, match="no SSH connection"):
        transport.reattach("/tmp/agent.sock")


def test_local_and_ssh_runtimes_both_run_through_their_transport(ssh_bed: SshBed) -> None:
    for host, kwargs in (("localhost", None), ("host-1", ssh_bed.connection_kwargs)):
        with Runtime(host, connection_kwargs=kwargs) as runtime:
            assert runtime.echo("through").strip() == "through"


def _asks_is_local(path: Path) -> int:
    return sum(
        1
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "is_local"
    )


def test_the_agent_actor_never_asks_which_transport_it_has() -> None:
    """No ``Popen`` and no local-or-SSH question in ``actors/agent.py``; the boolean is
    asked in fewer places (14 in 7 files before the transports)."""
    agent = (ROOT / "actors" / "agent.py").read_text(encoding="utf-8")
    assert "Popen" not in agent
    assert _asks_is_local(ROOT / "actors" / "agent.py") == 0
    asked = {
        path.relative_to(ROOT).as_posix(): count
        for path in sorted(ROOT.rglob("*.py"))
        if not path.relative_to(ROOT).as_posix().startswith("remote/agent/")
        and (count := _asks_is_local(path))
    }
    assert sum(asked.values()) <= 10, asked
