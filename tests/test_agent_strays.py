"""Processes that leave their command's process group and session (a daemon's double
fork and ``setsid``) still end with the agent's session: they carry the agent's mark in
their environment, and the agent, or its watchdog when the agent is killed, kills every
process carrying it. Processes without this agent's mark are never touched."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster.remote.agent.frames import Kind
from actorcluster.remote.agent.strays import MARK_VARIABLE, marked, new_mark
from agent_harness import AgentProcess
from proctree import cmdline, environ
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)

ESCAPE = textwrap.dedent(
    """
    import os, signal, sys, time

    def escape(then):
        # Double fork into a session of its own; then() runs in the grandchild.
        read_end, write_end = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.close(read_end)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.write(write_end, str(os.getpid()).encode())
                os.close(write_end)
                then()
            os._exit(0)
        os.close(write_end)
        pid = int(os.read(read_end, 32))
        os.close(read_end)
        os.wait()
        return pid

    def sleep():
        os.execvp("sleep", ["sleep", "300"])

    def agent_like():  # a command line that names the agent, as agents and watchdogs do
        code, name = "import time; time.sleep(300)", "actorcluster." + "remote.agent"
        os.execv(sys.executable, [sys.executable, "-c", code, name])  # (only this one)

    def respawn_on_sigterm():
        # Ignores SIGTERM; escapes once more when it gets one (its new pid in a file).
        def on_term(*_):
            pid = escape(sleep)
            with open(sys.argv[2] + ".tmp", "w") as file:
                file.write(str(pid))
            os.rename(sys.argv[2] + ".tmp", sys.argv[2])
        signal.signal(signal.SIGTERM, on_term)
        while True:
            time.sleep(1)

    modes = {"sleep": sleep, "agent": agent_like, "respawn": respawn_on_sigterm}
    print(escape(modes[sys.argv[1]]), flush=True)
    """
)


class Escaped:
    """A process a command left behind, held by a pidfd (no pid reuse can fool us)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.pidfd_open(pid)

    def gone(self, timeout: float) -> bool:
        """Whether it exited within ``timeout`` seconds."""
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.fd, signal.SIGKILL)
        os.close(self.fd)


@pytest.fixture
def escaped() -> Iterator[list[Escaped]]:
    """The processes a test made escape; whatever is left is killed after it."""
    made: list[Escaped] = []
    yield made
    for process in made:
        process.kill()


def _escape(
    agent: AgentProcess, made: list[Escaped], how: str = "sleep", prefix: str = ""
) -> Escaped:
    """Run a command whose child escapes its group and session; the escaped process."""
    command = f"echo $$; {prefix}{shlex.quote(sys.executable)} -c {shlex.quote(ESCAPE)} {how}"
    out, _, final = agent.run(command)
    assert final.kind == Kind.EXIT, final
    shell, pid = (int(word) for word in out.split())
    process = Escaped(pid)
    made.append(process)
    assert not process.gone(0)
    assert os.getsid(pid) not in (shell, os.getsid(0))  # it left the command's session
    assert os.getpgid(pid) != shell
    return process


def test_every_command_carries_its_agents_mark_and_agents_differ(
    agent: AgentProcess, tmp_path: Path
) -> None:
    first = agent.run(f"printenv {MARK_VARIABLE}")[0]
    again = agent.run(f"printenv {MARK_VARIABLE}", env={MARK_VARIABLE: "mine"})[0]
    other = AgentProcess(cwd=str(tmp_path))
    try:
        theirs = other.run(f"printenv {MARK_VARIABLE}")[0]
    finally:
        other.close()
    assert first.strip()
    assert again == first  # a command's own env cannot drop it by accident
    assert theirs.strip() and theirs != first
    assert MARK_VARIABLE not in os.environ


def test_a_process_that_left_its_session_is_killed_when_the_session_ends(
    agent: AgentProcess, escaped: list[Escaped]
) -> None:
    daemon = _escape(agent, escaped)
    agent.close_stdin()
    assert agent.wait(timeout=10) == 0
    assert daemon.gone(5)


def test_the_watchdog_kills_a_process_that_left_its_session_when_the_agent_is_killed(
    agent: AgentProcess, escaped: list[Escaped]
) -> None:
    daemon = _escape(agent, escaped)
    os.kill(agent.proc.pid, signal.SIGKILL)  # no clean-up of its own: the watchdog's
    agent.wait(timeout=10)
    assert daemon.gone(10)


def test_a_process_that_escapes_again_while_being_killed_leaves_nothing(
    agent: AgentProcess, escaped: list[Escaped], tmp_path: Path
) -> None:
    pid_file = tmp_path / "respawned"
    daemon = _escape(agent, escaped, f"respawn {shlex.quote(str(pid_file))}")
    agent.close_stdin()
    assert agent.wait(timeout=10) == 0
    assert daemon.gone(5)  # it ignored SIGTERM: SIGKILLed after the grace
    assert pid_file.exists()  # it escaped once more on SIGTERM...
    respawned = Escaped(int(pid_file.read_text()))
    escaped.append(respawned)
    assert respawned.gone(5)  # ...and that one was found and killed too


def test_only_processes_with_this_agents_mark_are_killed(
    agent: AgentProcess, escaped: list[Escaped], tmp_path: Path
) -> None:
    ours = _escape(agent, escaped)
    opted_out = _escape(agent, escaped, prefix=f"env -u {MARK_VARIABLE} ")
    nested_agent = _escape(agent, escaped, "agent")  # it cleans up after itself
    other = AgentProcess(cwd=str(tmp_path))
    try:
        theirs = _escape(other, escaped)
        assert environ(theirs.pid)[MARK_VARIABLE] != environ(ours.pid)[MARK_VARIABLE]
        assert MARK_VARIABLE not in environ(opted_out.pid)
        with subprocess.Popen(["sleep", "300"], start_new_session=True) as bystander:
            try:
                agent.close_stdin()
                assert agent.wait(timeout=10) == 0
                assert ours.gone(5)
                assert not opted_out.gone(0)
                assert not nested_agent.gone(0)
                assert not theirs.gone(0)
                assert bystander.poll() is None
            finally:
                bystander.kill()
        other.close_stdin()
        assert other.wait(timeout=10) == 0
        assert theirs.gone(5)
    finally:
        other.close()


_NEAR_MISSES = {
    "exact": lambda mark: {MARK_VARIABLE: mark},
    "longer": lambda mark: {MARK_VARIABLE: mark + "0"},
    "shorter": lambda mark: {MARK_VARIABLE: mark[:-1]},
    "inside": lambda mark: {MARK_VARIABLE: f"x{mark}"},
    "other name": lambda mark: {MARK_VARIABLE + "_X": mark},
    "in a value": lambda mark: {"OTHER": f"{MARK_VARIABLE}={mark}x"},
    "none": lambda mark: {},
}


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(sorted(_NEAR_MISSES)), min_size=1, max_size=4))
def test_a_process_is_found_exactly_when_its_environment_holds_the_mark(
    kinds: list[str],
) -> None:
    mark = new_mark()
    base = {k: v for k, v in os.environ.items() if k != MARK_VARIABLE}
    sleepers = [
        subprocess.Popen(["sleep", "30"], env={**base, **_NEAR_MISSES[kind](mark)})
        for kind in kinds
    ]
    try:
        execd = lambda: all(cmdline(p.pid) == b"sleep\x0030\x00" for p in sleepers)  # noqa: E731
        wait_until(execd, 5, "the sleepers run with their own environments")
        found = set(marked(mark))
        for kind, sleeper in zip(kinds, sleepers, strict=True):
            assert (sleeper.pid in found) == (kind == "exact"), kind
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait(timeout=5)


CLIENT = textwrap.dedent(
    """
    import json, sys
    from actorcluster import Runtime
    kwargs = {**json.loads(sys.argv[1]), "session_grace": 2.0}
    rt = Runtime(sys.argv[2], connection_kwargs=kwargs)
    process = rt.supervise(sys.argv[3], name="escaping")
    assert process.wait_running(30)
    print("up", flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("host", ["host-3", "localhost"])
def test_a_sigkilled_client_leaves_no_escaped_process_on_the_host(
    ssh_bed: object, escaped: list[Escaped], tmp_path: Path, host: str
) -> None:
    """A supervised command's daemon (double fork, setsid) is gone once the session's
    grace passed after the client was SIGKILLed, like the command itself."""
    pid_file = tmp_path / "daemon.pid"
    daemon = f"{shlex.quote(sys.executable)} -c {shlex.quote(ESCAPE)} sleep > {pid_file}"
    command = f"{daemon}; exec sleep 300"
    kwargs = {k: str(v) for k, v in ssh_bed.connection_kwargs.items()}  # type: ignore[attr-defined]
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps(kwargs), host, command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == b"up\n"
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "its pid")
        process = Escaped(int(pid_file.read_text()))
        escaped.append(process)
        wait_until(lambda: MARK_VARIABLE in environ(process.pid), 5, "the daemon's environment")
        client.kill()
        client.wait(timeout=10)
        assert process.gone(20)  # the grace (2 s), then the agent's clean-up
    finally:
        client.kill()
        client.wait(timeout=10)
        for stream in (client.stdin, client.stdout):
            if stream is not None:
                stream.close()
