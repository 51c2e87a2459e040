"""Fixtures shared by every test: the bed of real sshd hosts, and actor cleanup."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pykka
import pytest

from agent_harness import AgentProcess
from cli_runner import end_started
from sshbed import IsolationUnavailableError, SshBed
from sshbed_net import isolation_obstacle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

ACTOR_STOP_TIMEOUT = 10.0
_stuck_actors: set[str] = set()


@pytest.fixture(scope="session")
def ssh_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshBed]:
    """Three sshd hosts (``host-1``..``host-3``) shared by the whole run.

    Do not stop or change its hosts: other tests use them. Take ``make_ssh_bed`` for that.
    """
    bed = SshBed(tmp_path_factory.mktemp("ssh_bed"), count=3)
    try:
        bed.start()
    except IsolationUnavailableError as error:  # ACTORCLUSTER_TEST_ISOLATED=1 where it cannot
        pytest.skip(str(error))
    with bed:
        yield bed


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """The agent as a plain local subprocess (``python -m actorcluster.remote.agent``),
    working in the test's temporary folder."""
    process = AgentProcess(cwd=str(tmp_path))
    yield process
    process.close()


@pytest.fixture
def make_ssh_bed(tmp_path: Path) -> Iterator[Callable[..., SshBed]]:
    """Factory ``make_ssh_bed(count, isolated=..., rtt_ms=...)``: a started bed of this
    test's own, stopped after it. ``isolated`` defaults to the suite's switch
    (``ACTORCLUSTER_TEST_ISOLATED``)."""
    beds: list[SshBed] = []

    def make(count: int = 1, **options: Any) -> SshBed:
        bed = SshBed(tmp_path / f"ssh_bed_{len(beds)}", count=count, **options)
        beds.append(bed)
        try:
            return bed.start()
        except IsolationUnavailableError as error:
            pytest.skip(str(error))

    yield make
    for bed in reversed(beds):
        bed.stop()


@pytest.fixture
def make_isolated_bed(make_ssh_bed: Callable[..., SshBed]) -> Callable[..., SshBed]:
    """Factory ``make_isolated_bed(count, rtt_ms=...)``: hosts as separate machines
    (``SshBed(isolated=True)``); the test is skipped, saying why, where network
    namespaces cannot be made."""
    obstacle = isolation_obstacle()
    if obstacle is not None:
        pytest.skip(f"isolated hosts are not possible here: {obstacle}")

    def make(count: int = 1, **options: Any) -> SshBed:
        return make_ssh_bed(count, isolated=True, **options)

    return make


@pytest.fixture(autouse=True)
def _stop_leftover_actors() -> Iterator[None]:
    """After each test, stop every pykka actor the test started that still runs
    (newest first), bounded. Actors of wider-scoped fixtures (set up before this
    fixture) are left alone.

    An actor that does not stop in time fails this test's teardown once and is not
    waited on again, so one stuck actor cannot slow every later test down.
    """
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    yield
    deadline = time.monotonic() + ACTOR_STOP_TIMEOUT
    stuck: list[str] = []
    for ref in reversed(pykka.ActorRegistry.get_all()):
        if ref.actor_urn in _stuck_actors or ref.actor_urn in before:
            continue
        try:
            ref.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))
        except pykka.Timeout:
            _stuck_actors.add(ref.actor_urn)
            stuck.append(repr(ref))
    if stuck:
        pytest.fail(f"actors still running {ACTOR_STOP_TIMEOUT} s after the test: {stuck}")


@pytest.fixture(autouse=True)
def _end_started_cli() -> Iterator[None]:
    """After each test, end the command lines it started and did not wait for (one that
    failed midway): left running, their pipes open, the garbage collector would warn in
    some later test (ResourceWarning, an error there)."""
    yield
    end_started()


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """Put structlog back after each test: ``structlog.testing.capture_logs`` leaves it
    configured, which would send every later test's events through structlog's default
    printer (to stdout) instead of the standard loggers."""
    yield
    import structlog

    if structlog.is_configured():
        structlog.reset_defaults()


@pytest.fixture
def no_actors_left() -> Iterator[None]:
    """After the test, stop every actor and check that none is left registered.

    For tests that own the whole actor system (the supervision tests).
    """
    yield
    from actorcluster.supervisors import stop_root_supervisor
    from supervisor_fakes import stop_every_actor

    stop_root_supervisor(timeout=10)
    stop_every_actor()
    assert pykka.ActorRegistry.get_all() == []


AGENT_MARK = b"actorcluster.remote.agent"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if an agent this run started on this machine outlived its test.

    Local agents (and their watchdogs) are this process's descendants; agents on the
    bed's hosts are gone with the bed. A watchdog may take a moment to finish its clean-up.
    """
    import os

    from proctree import cmdline, descendants

    def leftovers() -> list[int]:
        return [pid for pid in descendants(os.getpid()) if AGENT_MARK in cmdline(pid)]

    deadline = time.monotonic() + 5.0
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left and exitstatus == 0:
        print(f"\nagent processes left running after the tests: {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
