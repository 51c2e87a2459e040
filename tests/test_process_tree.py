"""Supervised processes live in their runtime's subtree: a service's SupervisionTree
stops them all (no actor left, nothing on the host), and their status tells the truth
(pid known once running, no dead pid, restarts and last exit counted)."""

from __future__ import annotations

import signal

import pykka
import pytest

from actorcluster import Runtime
from actorcluster.supervisors import SupervisionTree
from proctree import kill_tree, matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(90)


def _actors() -> set[str]:
    return {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}


def test_stopping_a_services_tree_stops_every_supervised_process(ssh_bed):
    before = _actors()
    tree = SupervisionTree("service")
    tree.start()
    runtimes = [
        Runtime(host, connection_kwargs=ssh_bed.connection_kwargs, supervisor=tree.ref)
        for host in ("host-1", "host-2")
    ]
    processes = [
        runtime.supervise(f"exec sleep 401{index}", name=f"keeper-{index}")
        for index, runtime in enumerate(runtimes)
    ]
    processes.append(runtimes[0].supervise("exec sleep 4019", max_restarts=None))
    for process in processes:
        assert process.wait_running(20), process.snapshot
        assert process.pid is not None
    wait_until(lambda: len(matching(b"sleep\x00401")) == 3, 10, "three exec'd")
    tree.stop()
    assert _actors() <= before, "actors left registered after the tree stopped"
    assert not matching(b"sleep\x00401"), "a supervised process outlived its tree"
    assert [process.status for process in processes] == ["stopped"] * 3
    assert all(process.pid is None and not process.is_alive() for process in processes)


def test_the_status_says_running_with_its_pid_and_counts_every_restart(ssh_bed):
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        process = runtime.supervise("echo up; exec sleep 4021", name="counted")
        assert process.wait_running(20)
        pid = process.pid
        assert pid is not None
        wait_until(lambda: matching(b"sleep\x004021") == [pid], 10, "exec'd")  # same pid
        assert str(process.snapshot) == f"running(pid {pid})"
        assert process.restart_count == 0 and process.last_exit is None
        exits = []
        process.on_exit(exits.append)
        kill_tree(pid, kill_root=True)
        assert process.wait_restarted(1, 20)
        assert process.pid not in (None, pid)
        last = process.last_exit
        assert last is not None and last.signal == signal.SIGKILL and last.code is None
        assert last.returncode == -9 and "up" in last.output
        assert process.restart_count == 1
        assert exits == [last]
        process.stop()
        assert process.snapshot.status.value == "stopped" and process.pid is None


def test_a_failed_process_keeps_no_pid_and_says_why(ssh_bed):
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        process = runtime.supervise("echo boom; exit 3", max_restarts=2, period=60)
        process.join(30)
        snapshot = process.snapshot
        assert snapshot.status.value == "failed" and snapshot.pid is None
        assert str(snapshot).startswith("failed(") and "gave up" in str(snapshot)
        assert process.restart_count == 2
        assert snapshot.last_exit is not None and snapshot.last_exit.code == 3
        assert snapshot.last_exit.output[-1] == "boom"


def test_a_restarting_process_says_which_attempt_and_when(ssh_bed):
    from actorcluster.supervisors import Backoff

    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        process = runtime.supervise(
            "exit 7", max_restarts=None, backoff=Backoff(initial=30, maximum=30, jitter=0)
        )
        wait_until(lambda: process.status == "restarting", 20, "restarting")
        snapshot = process.snapshot
        assert snapshot.attempt == 1 and 25 < snapshot.next_restart_in <= 30
        assert str(snapshot).startswith("restarting(attempt 1, next in ")
        assert process.is_alive() and process.pid is None
        process.stop()
        assert process.status == "stopped"


def test_a_name_is_supervised_once_per_runtime(ssh_bed):
    from actorcluster import UsageError

    with Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        process = runtime.supervise("exec sleep 4031", name="only")
        with pytest.raises(UsageError, match="supervised already"):
            runtime.supervise("exec sleep 4032", name="only")
        process.stop()
        again = runtime.supervise("exec sleep 4033", name="only")
        assert again.wait_running(20)
        assert not matching(b"sleep\x004031") and not matching(b"sleep\x004032")


def test_forever_gets_a_growing_backoff_unless_given_one_and_bad_policies_are_named():
    from actorcluster import UsageError
    from actorcluster.runtimes.supervised import DEFAULT_BACKOFF, FOREVER_BACKOFF, _policy
    from actorcluster.supervisors import Backoff

    assert _policy("permanent", None, 60, DEFAULT_BACKOFF).backoff is FOREVER_BACKOFF
    assert _policy("permanent", None, 60, None).backoff is FOREVER_BACKOFF
    own = Backoff(initial=1, maximum=3)
    assert _policy("transient", None, 60, own).backoff is own
    assert _policy("permanent", 5, 60, None).backoff is None
    with pytest.raises(UsageError, match="max_restarts"):
        _policy("permanent", -1, 60, None)
    with pytest.raises(UsageError, match="period"):
        _policy("permanent", 3, 0, None)
    with pytest.raises(UsageError, match="backoff"):
        _policy("permanent", 3, 60, 2.0)
