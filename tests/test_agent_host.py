"""FACTS and PORTS: what the agent says about its host."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from agent_harness import AgentProcess


def test_facts_has_every_key_with_sane_values(agent: AgentProcess) -> None:
    found = agent.result(Kind.FACTS, {})
    assert found["hostname"] == socket.gethostname()
    assert found["python_version"] == platform.python_version()
    assert platform.system() in found["os"]
    assert 1 <= found["cpu_cores"] <= (os.cpu_count() or 1)
    assert 0 < found["memory"] < 1 << 50
    assert isinstance(found["gpus"], list)
    assert found["workspace_version"] is None


@pytest.mark.parametrize("host", ["127.0.0.1", ""])
def test_ports_tells_a_held_port_from_a_free_one(agent: AgentProcess, host: str) -> None:
    with socket.socket() as held, socket.socket() as probe:
        held.bind(("127.0.0.1", 0))
        held.listen()
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
        probe.close()  # a port nothing listens on, closed without TIME_WAIT
        ports = [held.getsockname()[1], free_port]
        assert agent.result(Kind.PORTS, {"ports": ports, "host": host}) == [False, True]


def test_ports_checks_a_thousand_ports_quickly(agent: AgentProcess) -> None:
    started = time.monotonic()
    free = agent.result(Kind.PORTS, {"ports": list(range(40000, 41000)), "host": "127.0.0.1"})
    assert len(free) == 1000
    assert all(isinstance(value, bool) for value in free)
    assert time.monotonic() - started < 2


def test_ports_with_a_bad_port_number_answers_an_error(agent: AgentProcess) -> None:
    _, final = agent.request(Kind.PORTS, {"ports": [80, 70000], "host": ""})
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "ValueError")
