"""The folders of an agent killed together with its watchdog: its session folder
(``<tmp>/actorcluster-session-*``, the re-attach socket) and its temporary working dir.
The next agent of the user removes them: from the dead agent's ledger once its grace
has passed (unless another agent holds the folder: a reconnect took it over), and any
session folder nobody listens in (a ledger lost); folders of agents that still run,
young ones and others are kept."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent import partials, sessions
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
    successor = _agent(tmp_path)  # it sweeps in the background as it starts
    try:
        wait_until(lambda: not os.path.exists(folder), 10, "the folder swept")
        assert os.path.isdir(_folder(successor))
    finally:
        successor.close()
    assert not os.path.exists(_folder(successor))  # its own, at its clean exit


def test_folders_of_running_agents_young_ones_and_others_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the sweep looks there
    running = _agent(tmp_path)
    stopped = _agent(tmp_path)
    os.kill(stopped.proc.pid, signal.SIGSTOP)  # hung: its socket still listens
    killed = _agent(tmp_path, cache="lost")
    young = _folder(killed)
    _kill_with_watchdog(killed)  # dead, but its folder is too young to tell
    busy = tmp_path / f"{sessions.PREFIX}busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not a session's")
    other = tmp_path / "actorcluster-something-else"
    other.mkdir()
    shared = tmp_path / f"{sessions.PREFIX}shared"
    shared.mkdir(mode=0o755)  # not private: not an agent's
    for path in (_folder(running), _folder(stopped), busy, other, shared):
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    try:
        assert sessions.sweep() == 0
        assert os.path.isdir(_folder(running)) and os.path.isdir(_folder(stopped))
        assert os.path.isdir(young) and busy.is_dir() and other.is_dir() and shared.is_dir()
        assert sessions.sweep(now=time.time() + 2 * sessions.MIN_AGE) == 1  # older now
        assert not os.path.exists(young)
    finally:
        os.kill(stopped.proc.pid, signal.SIGCONT)
        stopped.close()
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
    _working_dir(killed, work, grace=3.0)
    (work / "data.txt").write_text("left behind")
    session = _folder(killed)
    _kill_with_watchdog(killed)
    assert work.is_dir() and os.path.isdir(session)
    successor = _agent(tmp_path)
    try:
        # Within its grace a reconnecting client may still take it over: kept.
        assert (work / "data.txt").read_text() == "left behind"
        wait_until(lambda: not work.exists() and not os.path.exists(session), 10, "removed")
        ledgers = tmp_path / "cache" / "actorcluster" / "partials"
        wait_until(lambda: len(os.listdir(ledgers)) == 1, 10, "only the successor's ledger")
    finally:
        successor.close()


def test_a_working_dir_a_new_agent_took_over_is_kept(tmp_path):
    killed = _agent(tmp_path)
    work = tmp_path / "work"
    _working_dir(killed, work, grace=1.0)
    (work / "data.txt").write_text("the user's")
    _kill_with_watchdog(killed)
    successor = _agent(tmp_path)  # a reconnect: the new agent takes the dir over
    try:
        _working_dir(successor, work, grace=1.0)
        assert (work / "data.txt").read_text() == "the user's"
        (work / "kept.txt").write_text("still here")
        ledgers = tmp_path / "cache" / "actorcluster" / "partials"
        wait_until(lambda: len(os.listdir(ledgers)) == 1, 10, "the dead agent's ledger swept")
        assert (work / "kept.txt").read_text() == "still here"
        assert (work / "data.txt").read_text() == "the user's"
    finally:
        successor.close()
    assert not work.exists()  # the successor's own, at its clean exit


def _sweep_ledgers() -> None:
    """Sweep the ledgers here, and wait for its folder removals."""
    partials.sweep()
    for thread in threading.enumerate():
        if thread.name == "agent-sweep":
            thread.join(10)


def test_a_ledger_that_is_not_a_private_file_of_ours_is_never_followed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    (victim / "thesis.txt").write_text("years of work")
    ledgers = tmp_path / "cache" / "actorcluster" / "partials"
    ledgers.mkdir(parents=True, mode=0o700)
    planted = f"D{os.fsencode(str(victim)).hex()}\nG0.0\n"
    (tmp_path / "elsewhere").write_text(planted)
    (ledgers / "4194301-0").symlink_to(tmp_path / "elsewhere")  # a link: not read
    (ledgers / "4194302-0").write_text(planted)
    (ledgers / "4194302-0").chmod(0o644)  # readable by others: not one of ours
    (ledgers / "4194303-0").write_text(f"H{b'another-machine'.hex()}\n" + planted)
    (ledgers / "4194303-0").chmod(0o600)  # a shared home: that machine's agent may run
    _sweep_ledgers()
    assert (victim / "thesis.txt").read_text() == "years of work"
    assert sorted(os.listdir(ledgers)) == ["4194301-0", "4194302-0", "4194303-0"]
    ledgers.chmod(0o755)  # a ledger folder others may write to is not read at all
    (ledgers / "4194300-0").write_text(f"H{partials.host_key().encode().hex()}\n" + planted)
    (ledgers / "4194300-0").chmod(0o600)
    _sweep_ledgers()
    assert (victim / "thesis.txt").read_text() == "years of work"
    ledgers.chmod(0o700)  # the same ledger in a private folder: a dead agent's, swept
    _sweep_ledgers()
    assert not victim.exists() and "4194300-0" not in os.listdir(ledgers)


def test_a_working_dir_removed_while_a_new_agent_waits_for_it_is_made_again(tmp_path):
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    held = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a dead agent's sweeper does while removing it
    agent = _agent(tmp_path)
    try:
        setup = {"working_dir": str(work), "temporary": True, "env": {}}
        request = agent.start(Kind.SETUP, setup)
        wait_until(lambda: _waiting_on(agent.proc.pid, work), 10, "the agent waits for it")
        shutil.rmtree(work)
        os.close(held)  # the removal is over: the lock goes with it
        frame = agent.next_frame(request)
        assert frame.kind == Kind.RESULT and frame.payload["value"] == str(work)
        assert work.is_dir() and stat.S_IMODE(work.stat().st_mode) == 0o700
        _, _, done = agent.run("touch made-here")
        assert done.payload.get("code", 0) == 0 and (work / "made-here").exists()
    finally:
        agent.close()


def _waiting_on(pid: int, folder: Path) -> bool:
    """Whether ``pid`` has ``folder`` open (the agent opened it to lock it)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return str(folder) in links
