"""Cleanup ends a hung agent at once, whatever the heartbeat says: a SIGSTOPped agent
whose last heartbeat is fresh is killed with its watchdog and the commands it started,
and ``cleanup()`` returns in bounded time."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime, RuntimeTask
from proctree import alive, descendants, matching, wait_gone

if TYPE_CHECKING:
    from sshbed import SshBed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_cleanup_kills_a_stopped_agent_its_watchdog_and_its_commands(ssh_bed: SshBed) -> None:
    kwargs = {**ssh_bed.connection_kwargs, "heartbeat_timeout": 60}  # the heartbeat stays fresh
    rt = Runtime("host-2", connection_kwargs=kwargs)
    seconds = f"{300 + os.getpid() % 1000}.{time.monotonic_ns() % 997}"  # unique
    try:
        rt.execute_task(RuntimeTask("long").run_command(f"sleep {seconds}"), execute_async=True)
        _wait_for(lambda: matching(seconds.encode()), 30)
        commands = matching(seconds.encode())
        assert commands, "the command did not start"
        agent = rt._handle.context.session.address["pid"]  # type: ignore[union-attr]
        family = descendants(agent)  # the watchdog and the command's shell
        assert family
        os.kill(agent, signal.SIGSTOP)
    finally:
        started = time.monotonic()
        rt.cleanup()
        took = time.monotonic() - started
    left = wait_gone([agent, *family, *commands], timeout=5)
    print(f"cleanup of a stopped agent took {took:.1f} s; left: {left}")
    for pid in left:  # leave nothing behind whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running after cleanup: {left}"
    assert not alive(agent)
    assert took < 15
