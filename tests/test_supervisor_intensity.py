"""Restart intensity: giving up, and escalating to the parent supervisor."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from actorcluster.errors import SupervisorGaveUpError
from actorcluster.supervisors import (
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
    Journal,
    children,
    crash,
    end_child,
    ref_of,
    running,
    start_supervisor,
    worker_spec,
)

pytestmark = pytest.mark.usefixtures("no_actors_left")


def test_restarts_within_the_intensity_are_allowed() -> None:
    journal, clock = Journal(), ManualClock()
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        max_restarts=3,
        period=5.0,
        clock=clock,
    )
    for _ in range(3):
        end_child(sup, "a", crash)
    assert running(sup) == ["a"]
    assert supervisor_proxy(sup).statistics().get(timeout=WAIT).restarts_in_period == 3


def test_one_restart_too_many_stops_every_child_and_the_parentless_supervisor() -> None:
    journal, clock = Journal(), ManualClock()
    specs = [worker_spec(n, journal) for n in "abc"]
    sup = start_supervisor(
        "s", Strategy.ONE_FOR_ONE, specs, max_restarts=2, period=5.0, clock=clock
    )
    with capture_logs() as logs:
        for _ in range(2):
            end_child(sup, "b", crash)
        crash(ref_of(sup, "b"), ValueError("third"))
        assert join_actor(sup, timeout=WAIT)
    assert journal.names("stop") == ["c", "a"]
    gave_up = [e for e in logs if e["event"] == "supervisor.gave_up"]
    assert [(e["supervisor"], e["child"], e["reason"], e["restarts"]) for e in gave_up] == [
        ("s", "b", "ValueError('third')", 2)
    ]
    assert gave_up[0]["log_level"] == "error"


def test_restarts_older_than_the_period_are_forgotten() -> None:
    journal, clock = Journal(), ManualClock()
    sup = start_supervisor(
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("a", journal)],
        max_restarts=2,
        period=5.0,
        clock=clock,
    )
    end_child(sup, "a", crash)
    clock.advance(1.0)
    end_child(sup, "a", crash)
    clock.advance(4.0)  # the first restart is now exactly one period old: forgotten
    end_child(sup, "a", crash)
    assert running(sup) == ["a"]
    stats = supervisor_proxy(sup).statistics().get(timeout=WAIT)
    assert (stats.restarts_total, stats.restarts_in_period) == (3, 2)


def test_zero_max_restarts_gives_up_at_the_first_restart() -> None:
    journal = Journal()
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)], max_restarts=0)
    crash(ref_of(sup, "a"))
    assert join_actor(sup, timeout=WAIT)
    assert journal.names("start") == ["a"]


def test_temporary_and_transient_exits_do_not_count_towards_intensity() -> None:
    journal = Journal()
    specs = [
        worker_spec("t", journal, Restart.TEMPORARY),
        worker_spec("n", journal, Restart.TRANSIENT),
    ]
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, specs, max_restarts=0)
    end_child(sup, "t", crash)
    end_child(sup, "n", lambda ref: ref.stop())
    assert [c.id for c in children(sup)] == ["n"]
    assert sup.is_alive()


def test_child_supervisor_giving_up_reaches_the_parent_as_an_abnormal_exit() -> None:
    journal, clock = Journal(), ManualClock()
    inner = Supervisor.child_spec(
        "inner",
        Strategy.ONE_FOR_ONE,
        [worker_spec("w", journal)],
        max_restarts=1,
        period=5.0,
        clock=clock,
    )
    outer = start_supervisor("outer", Strategy.ONE_FOR_ONE, [inner], max_restarts=5, clock=clock)
    inner_ref = ref_of(outer, "inner")
    end_child(inner_ref, "w", crash)
    with capture_logs() as logs:
        crash(ref_of(inner_ref, "w"), ValueError("again"))
        assert join_actor(inner_ref, timeout=WAIT)
        infos = children(outer)  # the outer supervisor has handled the exit
    exits = [
        e for e in logs if e["event"] == "supervisor.child.exited" and e["supervisor"] == "outer"
    ]
    assert len(exits) == 1
    expected = SupervisorGaveUpError("inner", "w", "ValueError('again')", 1)
    assert exits[0]["reason"] == repr(expected)
    assert exits[0]["log_level"] == "warning"
    # the outer supervisor restarted the inner one, which started its worker afresh
    assert [(c.id, c.alive, c.restart_count) for c in infos] == [("inner", True, 1)]
    assert running(ref_of(outer, "inner")) == ["w"]
    assert journal.names("start") == ["w", "w", "w"]


def test_escalation_climbs_until_a_supervisor_can_absorb_it() -> None:
    journal, clock = Journal(), ManualClock()
    inner = Supervisor.child_spec(
        "inner", Strategy.ONE_FOR_ONE, [worker_spec("w", journal)], max_restarts=0, clock=clock
    )
    middle = Supervisor.child_spec(
        "middle", Strategy.ONE_FOR_ONE, [inner], max_restarts=0, clock=clock
    )
    with SupervisionTree("top", [middle], clock=clock, backoff=None) as tree:
        middle_ref = ref_of(tree.ref, "middle")
        crash(ref_of(ref_of(middle_ref, "inner"), "w"))
        assert join_actor(middle_ref, timeout=WAIT)
        infos = children(tree.ref)
        assert [(c.id, c.alive, c.restart_count) for c in infos] == [("middle", True, 1)]
        assert tree.failure is None


def test_tree_whose_root_gives_up_reports_the_failure() -> None:
    journal = Journal()
    with SupervisionTree("top", [worker_spec("w", journal)], max_restarts=0) as tree:
        crash(ref_of(tree.ref, "w"), ValueError("x"))
        assert join_actor(tree.ref, timeout=WAIT)
        assert not tree.is_alive()
        assert tree.failure == SupervisorGaveUpError("top", "w", "ValueError('x')", 0)
