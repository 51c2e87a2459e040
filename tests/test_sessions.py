"""A runtime's session outlives its connection: a dropped connection or a partition
loses nothing (tasks go on, the working dir stays), a host that stays away fails the
tasks typed in bounded time, and a hung agent is not left behind."""

from __future__ import annotations

import collections
import os
import signal
import time

import pytest

from actorcluster import HostUnreachableError, Runtime, RuntimeTask
from proctree import alive, cmdline
from waiting import wait_until

pytestmark = pytest.mark.slow

FAST = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0, "session_grace": 15.0}


@pytest.fixture
def host(make_ssh_bed):
    bed = make_ssh_bed(1)
    return bed, bed.hosts[0]


def _runtime(bed, **extra) -> Runtime:
    return Runtime("host-1", connection_kwargs={**bed.connection_kwargs, **FAST, **extra})


def test_a_file_in_the_temporary_working_dir_survives_a_dropped_connection(host):
    bed, sshd = host
    with _runtime(bed) as rt:
        working_dir = rt.working_dir
        rt.execute_task(RuntimeTask("put").run_command("echo kept > file.txt"), False)
        agent = rt.handle.client().hello["pid"]
        assert sshd.kill_sshd_sessions()
        wait_until(lambda: rt._handle.context.reattaches >= 1, 20, "the session was re-attached")
        task = RuntimeTask("read").run_command("cat file.txt; pwd")
        rt.execute_task(task, execute_async=False)
        assert task.execution_log == [f"kept\n{working_dir}\n"]
        assert rt.handle.client().hello["pid"] == agent  # the same agent: nothing re-ran


@pytest.mark.parametrize("fault", ["dropped", "partition"])
def test_a_running_task_completes_with_its_output_across_a_fault(host, fault):
    bed, sshd = host
    with _runtime(bed) as rt:
        task = RuntimeTask("long").run_command("echo before; sleep 6; echo done")
        future = rt.execute_task(task)
        assert future is not None
        wait_until(lambda: task.execution_log[:1] == ["before\n"], what="the task started")
        if fault == "dropped":
            sshd.kill_sshd_sessions()
        else:
            paused = sshd.pause_sessions()
            wait_until(lambda: not rt.is_connected, 15, "the partition was noticed")
            time.sleep(3)  # the partition itself lasts a while: that is the fault
            sshd.resume_sessions(paused)
        assert future.get(timeout=40).execution_log == ["before\ndone\n"]
        assert rt._handle.context.reattaches >= 1


def test_a_host_that_stays_away_fails_the_running_task_typed_within_the_bound(host):
    bed, sshd = host
    with _runtime(bed, session_grace=3.0) as rt:
        future = rt.execute_task(RuntimeTask("long").run_command("sleep 60"))
        assert future is not None
        rt.echo("in flight")
        began = time.monotonic()
        sshd.stop()
        with pytest.raises(HostUnreachableError, match="host-1") as caught:
            future.get(timeout=30)
        assert "3 s" in str(caught.value)  # it says it waited out the session's grace
        assert time.monotonic() - began < 25


def test_a_partition_with_defaults_fails_typed_within_thirty_seconds(host):
    bed, sshd = host
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        future = rt.execute_task(RuntimeTask("long").run_command("sleep 120"))
        assert future is not None
        rt.echo("in flight")
        began = time.monotonic()
        sshd.pause_sessions()
        sshd.stop()  # and then the host is gone for good
        with pytest.raises(HostUnreachableError, match="host-1"):
            future.get(timeout=45)
        assert time.monotonic() - began < 35


def test_a_stopped_agent_is_gone_from_the_host_after_cleanup(host):
    bed, _ = host
    rt = _runtime(bed)
    agent = rt.handle.client().hello["pid"]
    assert b"actorcluster.remote.agent" in cmdline(agent)
    os.kill(agent, signal.SIGSTOP)
    wait_until(lambda: not rt.is_connected, 15, "the hung agent was noticed")
    rt.cleanup()
    wait_until(lambda: not alive(agent), 15, "the hung agent was killed")


def test_a_hung_agent_is_replaced_and_killed_by_the_next_connection(host):
    bed, _ = host
    with _runtime(bed) as rt:
        agent = rt.handle.client().hello["pid"]
        os.kill(agent, signal.SIGSTOP)
        wait_until(
            lambda: rt.is_connected and rt.handle.client().hello["pid"] != agent,
            30,
            "a new agent came up",
        )
        wait_until(lambda: not alive(agent), 15, "the hung agent was killed")
        assert rt.echo("fresh").strip() == "fresh"


SOAK_TASKS = int(os.environ.get("ACTORCLUSTER_SOAK_TASKS", "300"))
"""Tasks in the soak: 300 in CI; ``ACTORCLUSTER_SOAK_TASKS=3000`` for the full run."""


@pytest.mark.timeout(max(120, SOAK_TASKS // 5))
def test_a_soak_with_connections_dropped_every_few_seconds_loses_nothing(make_ssh_bed):
    import threading

    from actorcluster import ActorClusterError

    bed = make_ssh_bed(2)
    kwargs = {**bed.connection_kwargs, **FAST}
    runtimes = [Runtime(f"host-{i}", connection_kwargs=kwargs) for i in (1, 2)]
    stop = threading.Event()

    def chaos() -> None:
        turn = 0
        while not stop.wait(1.5):
            bed.hosts[turn % 2].kill_sshd_sessions()
            turn += 1

    chaotic = threading.Thread(target=chaos, daemon=True)
    chaotic.start()
    outcomes: dict[int, str] = {}
    try:
        in_flight = []
        for i in range(SOAK_TASKS):
            runtime = runtimes[i % 2]
            command = f"echo {i} >> ran.txt; sleep 0.3; echo {i}"
            in_flight.append(
                (i, runtime.execute_task(RuntimeTask(f"soak-{i}").run_command(command)))
            )
            if len(in_flight) >= 30 or i == SOAK_TASKS - 1:
                for index, future in in_flight:
                    try:
                        done = future.get(timeout=120)
                        outcomes[index] = "ok" if done.execution_log == [f"{index}\n"] else "wrong"
                    except ActorClusterError as error:  # typed: allowed, and counted
                        outcomes[index] = type(error).__name__
                in_flight = []
    finally:
        stop.set()
        chaotic.join(timeout=10)
    try:
        assert set(outcomes) == set(range(SOAK_TASKS))
        assert not any(outcome == "FileNotFoundError" for outcome in outcomes.values())
        assert "wrong" not in outcomes.values()
        ran: list[int] = []
        for runtime in runtimes:
            runtime.wait_ready(timeout=60)
            ran += [int(line) for line in runtime.echo("$(cat ran.txt)").split()]
        assert len(ran) == len(set(ran)), "a task ran twice"
        assert {i for i, outcome in outcomes.items() if outcome == "ok"} <= set(ran)
        reattaches = sum(rt._handle.context.reattaches for rt in runtimes)
        print(f"soak: {collections.Counter(outcomes.values())}, re-attaches {reattaches}")
        assert reattaches >= 2
        assert sum(outcome == "ok" for outcome in outcomes.values()) > SOAK_TASKS * 0.9
    finally:
        for runtime in runtimes:
            runtime.cleanup()
