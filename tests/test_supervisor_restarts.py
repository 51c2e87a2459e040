"""Strategies, restart types, start/stop order, shutdown timeouts, backoff."""

from __future__ import annotations

import threading
import time

import pykka
import pytest
from structlog.testing import capture_logs

from actorcluster.supervisors import (
    Backoff,
    ManualClock,
    Restart,
    Strategy,
    SupervisionTree,
    Supervisor,
    join_actor,
    supervisor_proxy,
)
from supervisor_fakes import (
    WAIT,
    Hang,
    Journal,
    StartFailedError,
    children,
    crash,
    end_child,
    exit_normally,
    ref_of,
    running,
    start_supervisor,
    worker_spec,
)
from threads import leaked_threads

pytestmark = pytest.mark.usefixtures("no_actors_left")


@pytest.fixture
def journal() -> Journal:
    return Journal()


def _after(events: list[str], count: int) -> list[str]:
    return events[count:]


def test_children_start_in_order_and_stop_in_reverse_order(journal: Journal) -> None:
    specs = [worker_spec(name, journal) for name in "abc"]
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, specs)
    assert journal.names("start") == ["a", "b", "c"]
    sup.stop(block=True, timeout=WAIT)
    assert journal.names("stop") == ["c", "b", "a"]


def test_one_for_one_restarts_only_the_crashed_child(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec(n, journal) for n in "abc"])
    infos = end_child(sup, "b", crash)
    assert [(c.id, c.alive, c.restart_count) for c in infos] == [
        ("a", True, 0),
        ("b", True, 1),
        ("c", True, 0),
    ]
    assert journal.names("start") == ["a", "b", "c", "b"]
    assert journal.names("stop") == []


def test_one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order(
    journal: Journal,
) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ALL, [worker_spec(n, journal) for n in "abc"])
    infos = end_child(sup, "b", crash)
    assert journal.names("failure") == ["b"]
    assert journal.names("stop") == ["c", "a"]
    assert _after(journal.names("start"), 3) == ["a", "b", "c"]
    assert [c.restart_count for c in infos] == [1, 1, 1]
    assert all(c.alive for c in infos)


def test_rest_for_one_restarts_later_siblings(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.REST_FOR_ONE, [worker_spec(n, journal) for n in "abcd"])
    infos = end_child(sup, "b", crash)
    assert journal.names("stop") == ["d", "c"]
    assert _after(journal.names("start"), 4) == ["b", "c", "d"]
    assert [c.restart_count for c in infos] == [0, 1, 1, 1]
    assert running(sup) == ["a", "b", "c", "d"]


def test_rest_for_one_crash_of_the_last_child_restarts_only_it(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.REST_FOR_ONE, [worker_spec(n, journal) for n in "abc"])
    end_child(sup, "c", crash)
    assert journal.names("stop") == []
    assert _after(journal.names("start"), 3) == ["c"]


def test_permanent_child_is_restarted_after_a_normal_exit(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    infos = end_child(sup, "a", exit_normally)
    assert [(c.alive, c.restart_count) for c in infos] == [(True, 1)]


def test_transient_child_is_restarted_only_after_a_crash(journal: Journal) -> None:
    spec = worker_spec("a", journal, Restart.TRANSIENT)
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [spec])
    infos = end_child(sup, "a", crash)
    assert [(c.alive, c.restart_count) for c in infos] == [(True, 1)]
    infos = end_child(sup, "a", exit_normally)
    assert [(c.id, c.ref, c.alive, c.restart_count) for c in infos] == [("a", None, False, 1)]
    assert journal.names("start") == ["a", "a"]


def test_temporary_child_is_never_restarted_and_is_forgotten(journal: Journal) -> None:
    specs = [
        worker_spec("a", journal, Restart.TEMPORARY),
        worker_spec("b", journal, Restart.TEMPORARY),
    ]
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, specs)
    assert [c.id for c in end_child(sup, "a", crash)] == ["b"]
    assert end_child(sup, "b", exit_normally) == []
    assert journal.names("start") == ["a", "b"]


def test_one_for_all_stops_and_forgets_temporary_siblings(journal: Journal) -> None:
    specs = [
        worker_spec("a", journal),
        worker_spec("t", journal, Restart.TEMPORARY),
        worker_spec("c", journal),
    ]
    sup = start_supervisor("s", Strategy.ONE_FOR_ALL, specs)
    infos = end_child(sup, "a", crash)
    assert [c.id for c in infos] == ["a", "c"]
    assert journal.names("stop") == ["c", "t"]
    assert _after(journal.names("start"), 3) == ["a", "c"]


def test_one_for_all_also_starts_children_that_were_stopped(journal: Journal) -> None:
    """As OTP: a group restart starts every child spec kept, running or not."""
    specs = [worker_spec("a", journal), worker_spec("b", journal, Restart.TRANSIENT)]
    sup = start_supervisor("s", Strategy.ONE_FOR_ALL, specs)
    end_child(sup, "b", exit_normally)
    assert running(sup) == ["a"]
    end_child(sup, "a", crash)
    assert running(sup) == ["a", "b"]


def test_failing_child_start_fails_the_supervisor_start_and_stops_the_others(
    journal: Journal,
) -> None:
    journal.fail_next_starts("b", 1)
    specs = [worker_spec(n, journal) for n in "abc"]
    with SupervisionTree("t") as tree:
        with pytest.raises(StartFailedError):
            tree.proxy().start_child(Supervisor.child_spec("sub", Strategy.ONE_FOR_ONE, specs)).get(
                timeout=WAIT
            )
        assert journal.names("start") == ["a"]
        assert journal.names("start_failed") == ["b"]
        assert journal.names("stop") == ["a"]
        assert children(tree.ref) == []
        assert pykka.ActorRegistry.get_all() == [tree.ref]


def test_supervisor_started_directly_with_a_failing_child_stops(journal: Journal) -> None:
    journal.fail_next_starts("a", 1)
    sup = Supervisor.start("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    assert join_actor(sup, timeout=WAIT)


def test_child_that_does_not_stop_in_time_is_left_behind_with_a_log(journal: Journal) -> None:
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal), worker_spec("slow", journal, shutdown_timeout=0.2)],
    )
    slow = ref_of(sup, "slow")
    release = threading.Event()
    slow.tell(Hang(release))
    began = time.monotonic()
    with capture_logs() as logs:
        sup.stop(block=True, timeout=WAIT)
    assert time.monotonic() - began < 2.0
    kills = [e for e in logs if e["event"] == "supervisor.child.kill_timeout"]
    assert [(e["supervisor"], e["child"], e["log_level"]) for e in kills] == [
        ("s", "slow", "warning")
    ]
    assert journal.names("stop") == ["a"]  # "a" stopped anyway, after "slow" was given up on
    release.set()
    assert join_actor(slow, timeout=WAIT)


def test_supervision_events_carry_supervisor_child_reason_and_restarts(journal: Journal) -> None:
    with capture_logs() as logs:
        sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
        end_child(sup, "a", lambda ref: crash(ref, ValueError("bad")))
    wanted = {"supervisor.child.started", "supervisor.child.exited", "supervisor.child.restarted"}
    seen = [
        (e["event"], e["supervisor"], e["child"], e["reason"], e["restarts"])
        for e in logs
        if e["event"] in wanted
    ]
    assert seen == [
        ("supervisor.child.started", "s", "a", None, 0),
        ("supervisor.child.exited", "s", "a", "ValueError('bad')", 0),
        ("supervisor.child.restarted", "s", "a", "ValueError('bad')", 1),
    ]


def test_unknown_message_is_logged_as_a_warning() -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    with capture_logs() as logs:
        sup.tell("hello")
        children(sup)
    assert [(e["event"], e["log_level"], e["message"]) for e in logs] == [
        ("supervisor.unknown_message", "warning", "str")
    ]


def test_restart_waits_for_the_backoff_without_blocking_the_inbox(journal: Journal) -> None:
    clock = ManualClock()
    backoff = Backoff(initial=10.0, maximum=10.0, jitter=0.0)
    sup = start_supervisor(
        "s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)], backoff=backoff, clock=clock
    )
    infos = end_child(sup, "a", crash)
    assert [(c.ref, c.alive, c.restarting) for c in infos] == [(None, False, True)]
    assert clock.next_due() == 10.0
    assert supervisor_proxy(sup).statistics().get(timeout=WAIT).pending_restarts == 1
    clock.advance(9.9)
    assert running(sup) == []
    clock.advance(0.1)
    assert running(sup) == ["a"]
    assert journal.names("start") == ["a", "a"]


def test_supervisor_stops_promptly_while_a_restart_is_pending(journal: Journal) -> None:
    clock = ManualClock()
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        backoff=Backoff(initial=60.0, maximum=60.0),
        clock=clock,
    )
    end_child(sup, "a", crash)
    began = time.monotonic()
    sup.stop(block=True, timeout=WAIT)
    assert time.monotonic() - began < 1.0
    assert clock.pending == 0
    clock.advance(120.0)
    assert journal.names("start") == ["a"]


def test_backoff_grows_with_recent_restarts_up_to_the_maximum(journal: Journal) -> None:
    clock = ManualClock()
    backoff = Backoff(initial=1.0, maximum=3.0, multiplier=2.0, jitter=0.0)
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        max_restarts=10,
        period=100.0,
        backoff=backoff,
        clock=clock,
    )
    delays = []
    for _ in range(4):
        end_child(sup, "a", crash)
        due = clock.next_due()
        assert due is not None
        delays.append(due - clock.monotonic())
        clock.advance(due - clock.monotonic())
        assert running(sup) == ["a"]
    assert delays == [1.0, 2.0, 3.0, 3.0]


def test_restart_whose_start_fails_is_retried_and_counted(journal: Journal) -> None:
    clock = ManualClock()
    backoff = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=0.0)
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        max_restarts=5,
        period=100.0,
        backoff=backoff,
        clock=clock,
    )
    journal.fail_next_starts("a", 2)
    end_child(sup, "a", crash)
    for expected_delay in (1.0, 2.0, 4.0):
        assert clock.wait_for_pending(1, timeout=WAIT)
        assert clock.next_due() == clock.monotonic() + expected_delay
        clock.advance(expected_delay)
        children(sup)  # the restart attempt has been handled
    journal.wait_count("start", "a", 2)
    stats = supervisor_proxy(sup).statistics().get(timeout=WAIT)
    assert (stats.restarts_total, stats.children[0].restart_count) == (3, 1)
    assert journal.names("start_failed") == ["a", "a"]


def test_restart_whose_start_fails_without_backoff_is_retried_through_the_inbox(
    journal: Journal,
) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)], max_restarts=5)
    journal.fail_next_starts("a", 2)
    end_child(sup, "a", crash)
    journal.wait_count("start", "a", 2)
    assert journal.names("start_failed") == ["a", "a"]
    stats = supervisor_proxy(sup).statistics().get(timeout=WAIT)
    assert stats.restarts_total == 3


def test_real_clock_backoff_restarts_after_the_delay(journal: Journal) -> None:
    threads_before = set(threading.enumerate())
    backoff = Backoff(initial=0.05, maximum=0.05, jitter=0.0)
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)], backoff=backoff)
    began = time.monotonic()
    end_child(sup, "a", crash)
    journal.wait_count("start", "a", 2)
    assert time.monotonic() - began >= 0.05
    sup.stop(block=True, timeout=WAIT)
    assert join_actor(sup, timeout=WAIT)
    assert not leaked_threads(threads_before)


def test_rest_for_one_crash_during_a_pending_restart_merges_the_restarts(journal: Journal) -> None:
    clock = ManualClock()
    backoff = Backoff(initial=5.0, maximum=5.0, jitter=0.0)
    sup = start_supervisor(
        "s",
        Strategy.REST_FOR_ONE,
        [worker_spec(n, journal) for n in "abc"],
        backoff=backoff,
        clock=clock,
    )
    end_child(sup, "c", crash)
    assert clock.pending == 1
    end_child(sup, "a", crash)
    assert clock.pending == 1  # c's restart folded into a's
    assert [c.restarting for c in children(sup)] == [True, True, True]
    clock.advance(5.0)
    assert running(sup) == ["a", "b", "c"]
    assert _after(journal.names("start"), 3) == ["a", "b", "c"]


def test_a_child_failing_again_with_the_same_error_is_warned_about_once(
    journal: Journal,
) -> None:
    """A retry loop logs its first failure, not every attempt (a host down for minutes
    gave one warning per restart): the same error again within the child's streak is
    debug; another error, or a crash after a whole period of running, warns again."""
    clock = ManualClock()
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        max_restarts=100,
        period=10.0,
        backoff=None,
        clock=clock,
    )
    with capture_logs() as logs:
        for error in (ValueError("1"), ValueError("2"), ValueError("3"), KeyError("k")):
            end_child(sup, "a", lambda ref, error=error: crash(ref, error))  # type: ignore[misc]
        clock.advance(10.0)  # "a" has run a whole period: a new streak
        end_child(sup, "a", lambda ref: crash(ref, KeyError("k")))
    levels = [e["log_level"] for e in logs if e["event"] == "supervisor.child.exited"]
    assert levels == ["warning", "debug", "debug", "warning", "warning"]
    sup.stop(block=True, timeout=WAIT)
