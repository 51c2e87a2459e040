"""The process service's calls for owners (a cluster's coordinator): an owner's
restart of a run, a stop of many that waits once until all are gone, two processes of
one name under their own labels, a lost host as an exit; on a real sshd host."""

from __future__ import annotations

import pytest

from actorcluster import Runtime
from actorcluster.runtimes.supervised import ProcessSpec, RestartPolicy, stop_many
from proctree import kill_tree, matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def runtime(ssh_bed):
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as host:
        yield host


def _start(runtime: Runtime, label: str, command: str, **policy: object):
    spec = ProcessSpec(name="same-name", command=command)
    return runtime.handle.start_process(spec, RestartPolicy(**policy), label=label)


def test_an_owner_restarts_a_run_and_stops_many_at_once(runtime):
    first = _start(runtime, "a", "echo up-a; exec sleep 3101")
    second = _start(runtime, "b", "echo up-b; exec sleep 3102")
    exits = []
    first.on_exit(exits.append)
    assert first.wait_running(20) and second.wait_running(20)
    pid = first.pid
    first.restart()  # the owner's choice: no exit of its own, not the intensity's
    assert first.wait_restarted(1, 20)
    assert first.pid != pid and exits == [] and first.exit_codes == []
    wait_until(lambda: first.output().count("up-a") == 2, what="the second run printed")
    assert stop_many([first, second], timeout=20)
    assert first.status == second.status == "stopped"
    assert not matching(b"sleep\x003101") and not matching(b"sleep\x003102")
    first.restart()  # once stopped: nothing happens
    assert first.status == "stopped"


def test_its_exit_notice_comes_before_the_restart(runtime):
    process = _start(runtime, "n", "echo up; exec sleep 3103", max_restarts=3)
    notices = []
    process.on_exit(lambda info: notices.append((info, process.status)))
    assert process.wait_running(20)
    kill_tree(process.pid, kill_root=True)
    assert process.wait_restarted(1, 20)
    ((info, status),) = notices
    assert status in ("restarting", "starting") and process.exit_codes == [-9]
    assert info is process.last_exit
    process.stop()
