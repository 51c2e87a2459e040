"""The folders of an agent killed together with its watchdog: its session folder
(``<tmp>/actorcluster-session-*``, the re-attach socket) and its temporary working dir.
The next agent of the user removes them: from the dead agent's ledger once its grace
has passed (unless another agent holds the folder: a reconnect took it over), and any
session folder nobody listens in (a ledger lost); folders of agents that still run,
young ones and others are kept."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent import sessions
from actorcluster.remote.agent.frames import Kind
from agent_harness import AgentProcess
from proctree import descendants, wait_gone
from waiting import wait_until

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)

AN_HOUR_AGO = time.time() - 3600


def _agent(tmp: Path, cache: str = "cache") -> AgentProcess:
    """An agent making its folders in ``tmp``, its ledger in ``tmp/<cache>``."""
    return AgentProcess(cwd=str(tmp), env={"TMPDIR": str(tmp), "XDG_CACHE_HOME": str(tmp / cache)})


def _folder(agent: AgentProcess) -> str:
    return os.path.dirname(agent.hello.payload["session"]["socket"])


def _kill_with_watchdog(agent: AgentProcess) -> None:
    family = [agent.proc.pid, *descendants(agent.proc.pid)]
    for pid in reversed(family):  # the watchdog first: nobody is left to clean up
        os.kill(pid, signal.SIGKILL)
    agent.close()
    assert wait_gone(family, timeout=10) == []


def test_the_next_agent_removes_a_session_folder_nobody_listens_in(tmp_path):
    killed = _agent(tmp_path, cache="lost")  # its ledger is not where the next one looks
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
    killed = _agent(tmp_path, cache="lost")
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


def _working_dir(agent: AgentProcess, path: Path, grace: float) -> None:
    setup = {"working_dir": str(path), "temporary": True, "env": {}, "session": {"grace": grace}}
    assert agent.result(Kind.SETUP, setup) == str(path)


def test_the_next_agent_removes_a_dead_agents_folders_after_its_grace(tmp_path):
    killed = _agent(tmp_path)
    work = tmp_path / "work"
    _working_dir(killed, work, grace=1.0)
    (work / "data.txt").write_text("left behind")
    session = _folder(killed)
    _kill_with_watchdog(killed)
    assert work.is_dir() and os.path.isdir(session)
    successor = _agent(tmp_path)
    try:
        assert work.is_dir()  # its grace: a reconnecting client may still take it over
        wait_until(lambda: not work.exists() and not os.path.exists(session), 10, "removed")
        ledgers = tmp_path / "cache" / "actorcluster" / "partials"
        wait_until(lambda: len(os.listdir(ledgers)) == 1, 10, "only the successor's ledger")
    finally:
        successor.close()


def test_a_working_dir_a_new_agent_took_over_is_kept(tmp_path):
    killed = _agent(tmp_path)
    work = tmp_path / "work"
    _working_dir(killed, work, grace=1.0)
    _kill_with_watchdog(killed)
    successor = _agent(tmp_path)  # a reconnect: the new agent takes the dir over
    try:
        _working_dir(successor, work, grace=1.0)
        (work / "kept.txt").write_text("still here")
        ledgers = tmp_path / "cache" / "actorcluster" / "partials"
        wait_until(lambda: len(os.listdir(ledgers)) == 1, 10, "the dead agent's ledger swept")
        assert (work / "kept.txt").read_text() == "still here"
    finally:
        successor.close()
    assert not work.exists()  # the successor's own, at its clean exit
