"""Supervised processes outlive host outages: while the host is away they are `waiting
for host` (never failing, never counted toward the intensity), a process that lived
through a dropped connection is re-adopted, and one lost with its host is started again
the moment the host is back. Real sshd hosts, really stopped (listener and every
session killed) and started again."""

from __future__ import annotations

import os
import threading
import time

import pytest

from actorcluster import Runtime
from actorcluster.actors import runtime_tree
from logcapture import captured_logs
from proctree import kill_tree, matching
from waiting import wait_until

KWARGS = {"heartbeat_interval": 0.5, "heartbeat_timeout": 3.0}
AT_ONCE = 1.0
"""Seconds from the runtime's agent being back to the process running again: no backoff,
no wait in between (measured: a few milliseconds)."""
BACK_WITHIN = 15.0
"""Seconds from sshd's return to the process running again, loaded machine included:
the runtime's reconnect pacing (at most 2.2 s) and a new agent's start come first.
Measured unloaded: 0.9-3 s (the issue's bound is 5 s); the strict check is AT_ONCE."""


class StatusLog:
    """Every status a process reports, in order (consecutive repeats dropped)."""

    def __init__(self, process) -> None:
        self._seen: list[str] = []
        self._lock = threading.Lock()
        self.unsubscribe = process.subscribe(lambda state: self._add(state.status.value))
        self._add(process.status)

    def _add(self, status: str) -> None:
        with self._lock:
            if not self._seen or self._seen[-1] != status:
                self._seen.append(status)

    def since(self, index: int) -> list[str]:
        with self._lock:
            return self._seen[index:]

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


def _outage(make_ssh_bed, seconds: float, marker: str, gives_up=None) -> None:
    """A process lives through ``seconds`` of its host stopped; with ``gives_up`` (a
    check of the logs), the runtime's supervisor must have given up on the host by the
    outage's end."""
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    kwargs = {**bed.connection_kwargs, **KWARGS}
    with Runtime("host-1", connection_kwargs=kwargs) as runtime:
        process = runtime.supervise(f"exec sleep {marker}", name="keeper", max_restarts=1)
        assert process.wait_running(20)
        first = process.pid
        log = StatusLog(process)
        host.stop()
        assert not matching(f"sleep\x00{marker}".encode()), "the outage left it running"
        # The log, not just the status: its listener appends a moment after the status
        # reads so (a mark taken in between would point at "running").
        wait_until(lambda: log.since(len(log) - 1) == ["waiting for host"], 15, "waiting")
        assert process.pid is None
        agent_back: list[float] = []
        runtime._handle.context.when_agent(
            lambda _client, _error: agent_back.append(time.monotonic()), seconds + 120
        )
        mark = len(log) - 1  # its latest status: waiting for host
        threading.Event().wait(seconds)  # the outage itself
        if gives_up is not None:
            assert gives_up(), "the runtime's supervisor never gave up during the outage"
        assert log.since(mark) == ["waiting for host"], "its status moved while away"
        assert process.is_alive() and process.restart_count == 0
        host.start()
        back = time.monotonic()
        assert process.wait_running(60), process.snapshot
        running_at = time.monotonic()
        took, after_agent = running_at - back, running_at - agent_back[0]
        print(
            f"\noutage {seconds:g} s: running again {took:.2f} s after sshd's return, "
            f"{after_agent * 1000:.0f} ms after the runtime's agent"
        )
        pid = process.pid
        assert pid is not None and pid != first
        assert after_agent < AT_ONCE, f"running only {after_agent:.2f} s after the agent"
        assert took < BACK_WITHIN, f"running again only {took:.1f} s after sshd's return"
        # The pid comes from the shell, just before it execs the command.
        wait_until(lambda: matching(f"sleep\x00{marker}".encode()) == [pid], 10, "exec'd")
        assert process.restart_count == 1, "the restart after the outage counts once"
        assert "restarting" not in log.since(0) and "failed" not in log.since(0)
        # The outage used none of the intensity (1 in 60 s): one crash is still allowed.
        kill_tree(pid, kill_root=True)
        assert process.wait_restarted(2, 20), process.snapshot
        log.unsubscribe()
        process.stop()
        assert not matching(f"sleep\x00{marker}".encode())


@pytest.mark.timeout(30)
def test_a_process_that_lives_through_a_dropped_connection_is_readopted(make_ssh_bed):
    bed = make_ssh_bed(1)
    kwargs = {**bed.connection_kwargs, **KWARGS}
    with Runtime("host-1", connection_kwargs=kwargs) as runtime:
        process = runtime.supervise("exec sleep 4201", name="adopted")
        assert process.wait_running(20)
        pid = process.pid
        log = StatusLog(process)
        bed.hosts[0].kill_sshd_sessions()  # the connection drops, the agent lives on
        wait_until(lambda: "waiting for host" in log.since(0), 10, "waiting for host")
        assert process.wait_running(20)
        assert process.pid == pid and process.restart_count == 0
        assert matching(b"sleep\x004201") == [pid]
        process.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_process_runs_again_within_seconds_of_a_30_s_outage(make_ssh_bed):
    _outage(make_ssh_bed, 30, "4301")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_process_runs_again_after_an_outage_its_runtime_gave_up_on(make_ssh_bed, monkeypatch):
    # The 75 s outage of the issue, in 12 s: the runtime's supervisor gives up after 3
    # restarts instead of 30 (about a minute), so the outage crosses the same give-up.
    monkeypatch.setattr(runtime_tree, "MAX_RESTARTS", 3)
    with captured_logs() as logs:

        def gave_up() -> bool:
            return any(
                e["event"] == "supervisor.gave_up" and e.get("supervisor") == "runtime:host-1"
                for e in list(logs)
            )

        _outage(make_ssh_bed, 12, "4302", gives_up=gave_up)


@pytest.mark.soak
@pytest.mark.timeout(180)
@pytest.mark.skipif(not os.environ.get("ACTORCLUSTER_SOAK"), reason="soak: ACTORCLUSTER_SOAK=1")
def test_a_process_runs_again_within_seconds_of_a_75_s_outage(make_ssh_bed):
    _outage(make_ssh_bed, 75, "4305")


@pytest.mark.soak
@pytest.mark.timeout(800)
@pytest.mark.skipif(not os.environ.get("ACTORCLUSTER_SOAK"), reason="soak: ACTORCLUSTER_SOAK=1")
def test_a_process_runs_again_within_seconds_of_a_10_minute_outage(make_ssh_bed):
    _outage(make_ssh_bed, 600, "4303")


@pytest.mark.timeout(60)
def test_a_tree_stopped_while_its_host_is_away_leaves_no_actor_and_nothing_on_the_host(
    make_ssh_bed,
):
    import pykka

    from actorcluster.supervisors import SupervisionTree

    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    tree = SupervisionTree("service")
    tree.start()
    kwargs = {**bed.connection_kwargs, **KWARGS}
    runtime = Runtime("host-1", connection_kwargs=kwargs, supervisor=tree.ref)
    process = runtime.supervise("exec sleep 4401", max_restarts=None)
    assert process.wait_running(20)
    host.stop()
    wait_until(lambda: process.status == "waiting for host", 15, "waiting for host")
    tree.stop()
    assert process.status == "stopped" and not process.is_alive()
    assert {ref.actor_urn for ref in pykka.ActorRegistry.get_all()} <= before
    host.start()  # nothing comes back: the runtime is gone with its tree
    assert not matching(b"sleep\x004401")
