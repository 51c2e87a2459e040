"""Session folders (``<tmp>/actorcluster-session-*``, an agent's re-attach socket): an
agent killed together with its watchdog leaves its folder, and the next agent of the
user removes it; folders of agents that still run, young ones and others are kept."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent import sessions
from agent_harness import AgentProcess
from proctree import descendants, wait_gone

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)

AN_HOUR_AGO = time.time() - 3600


def _agent(tmp: Path) -> AgentProcess:
    return AgentProcess(cwd=str(tmp), env={"TMPDIR": str(tmp)})


def _folder(agent: AgentProcess) -> str:
    return os.path.dirname(agent.hello.payload["session"]["socket"])


def _kill_with_watchdog(agent: AgentProcess) -> None:
    family = [agent.proc.pid, *descendants(agent.proc.pid)]
    for pid in reversed(family):  # the watchdog first: nobody is left to clean up
        os.kill(pid, signal.SIGKILL)
    agent.close()
    assert wait_gone(family, timeout=10) == []


def test_the_next_agent_removes_the_folder_of_one_killed_with_its_watchdog(tmp_path):
    killed = _agent(tmp_path)
    folder = _folder(killed)
    assert os.path.basename(folder).startswith(sessions.PREFIX)
    _kill_with_watchdog(killed)
    assert os.listdir(folder) == [sessions.SOCKET_NAME]  # left behind
    os.utime(folder, (AN_HOUR_AGO, AN_HOUR_AGO))
    successor = _agent(tmp_path)  # it sweeps before it says HELLO
    try:
        assert not os.path.exists(folder)
        assert os.path.isdir(_folder(successor))
    finally:
        successor.close()
    assert not os.path.exists(_folder(successor))  # its own, at its clean exit


def test_folders_of_running_agents_young_ones_and_others_are_kept(tmp_path):
    running = _agent(tmp_path)
    killed = _agent(tmp_path)
    young = _folder(killed)
    _kill_with_watchdog(killed)  # dead, but its folder is too young to tell
    busy = tmp_path / f"{sessions.PREFIX}busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not a session's")
    other = tmp_path / "actorcluster-something-else"
    other.mkdir()
    for path in (_folder(running), busy, other):
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    try:
        successor = _agent(tmp_path)
        successor.close()
        assert os.path.isdir(_folder(running)) and os.path.isdir(young)
        assert busy.is_dir() and other.is_dir()
    finally:
        running.close()
    assert not os.path.exists(_folder(running))


def test_listening_sockets_are_those_that_accept(tmp_path):
    listening, bound = str(tmp_path / "listening.sock"), str(tmp_path / "bound.sock")
    with socket.socket(socket.AF_UNIX) as one, socket.socket(socket.AF_UNIX) as two:
        one.bind(listening)
        one.listen(1)
        two.bind(bound)
        found = sessions.listening_sockets()
        assert found is not None
        assert listening in found and bound not in found
    assert listening not in (sessions.listening_sockets() or set())
