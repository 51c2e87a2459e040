"""Dynamic children: start_child, terminate_child, restart_child, delete_child,
which_children, count_children; repr and statistics."""

from __future__ import annotations

import pykka
import pytest
from pykka.messages import ProxyCall

from actorcluster.errors import ConfigurationError, UsageError
from actorcluster.supervisors import (
    ChildCounts,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    supervisor_proxy,
)
from supervisor_fakes import (
    WAIT,
    Journal,
    StartFailedError,
    Worker,
    children,
    crash,
    end_child,
    running,
    start_supervisor,
    worker_spec,
)

pytestmark = pytest.mark.usefixtures("no_actors_left")


@pytest.fixture
def journal() -> Journal:
    return Journal()


def test_start_child_appends_a_running_child_and_returns_its_ref(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    ref = supervisor_proxy(sup).start_child(worker_spec("b", journal)).get(timeout=WAIT)
    assert isinstance(ref, pykka.ActorRef)
    assert ref.is_alive()
    infos = children(sup)
    assert [c.id for c in infos] == ["a", "b"]
    assert infos[1].ref == ref


def test_start_child_returns_only_after_the_child_on_start_finished(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    supervisor_proxy(sup).start_child(worker_spec("a", journal)).get(timeout=WAIT)
    assert journal.names("start") == ["a"]


def test_start_child_whose_start_fails_raises_and_keeps_nothing(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    journal.fail_next_starts("a", 1)
    with pytest.raises(StartFailedError):
        supervisor_proxy(sup).start_child(worker_spec("a", journal)).get(timeout=WAIT)
    assert children(sup) == []
    assert pykka.ActorRegistry.get_all() == [sup]


def test_start_child_with_a_duplicate_id_raises_naming_it(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    with pytest.raises(UsageError, match="'a'"):
        supervisor_proxy(sup).start_child(worker_spec("a", journal)).get(timeout=WAIT)
    assert journal.names("start") == ["a"]


def test_start_child_whose_start_is_not_a_supervised_actor_is_refused() -> None:
    class Plain(pykka.ThreadingActor):
        use_daemon_thread = True

    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    with pytest.raises(ConfigurationError, match="SupervisedActor"):
        supervisor_proxy(sup).start_child(ChildSpec("p", Plain.start)).get(timeout=WAIT)
    assert children(sup) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.terminate_child("nope"),
        lambda p: p.restart_child("nope"),
        lambda p: p.delete_child("nope"),
    ],
    ids=["terminate_child", "restart_child", "delete_child"],
)
def test_unknown_child_id_raises_naming_it(call: object) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    with pytest.raises(UsageError, match="'nope'"):
        call(supervisor_proxy(sup)).get(timeout=WAIT)  # type: ignore[operator]


def test_terminate_child_stops_it_and_keeps_its_spec(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec(n, journal) for n in "ab"])
    supervisor_proxy(sup).terminate_child("a").get(timeout=WAIT)
    assert journal.names("stop") == ["a"]
    infos = children(sup)
    assert [(c.id, c.ref, c.alive) for c in infos] == [
        ("a", None, False),
        ("b", infos[1].ref, True),
    ]


def test_terminate_child_forgets_a_temporary_child(journal: Journal) -> None:
    sup = start_supervisor(
        "s", Strategy.ONE_FOR_ONE, [worker_spec("t", journal, Restart.TEMPORARY)]
    )
    supervisor_proxy(sup).terminate_child("t").get(timeout=WAIT)
    assert children(sup) == []


def test_restart_child_starts_a_terminated_child_in_its_place(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec(n, journal) for n in "ab"])
    proxy = supervisor_proxy(sup)
    proxy.terminate_child("a").get(timeout=WAIT)
    ref = proxy.restart_child("a").get(timeout=WAIT)
    assert ref.is_alive()
    assert running(sup) == ["a", "b"]
    assert journal.names("start") == ["a", "b", "a"]


def test_restart_child_and_delete_child_refuse_a_running_child(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    proxy = supervisor_proxy(sup)
    with pytest.raises(UsageError, match=r"'a'.*running"):
        proxy.restart_child("a").get(timeout=WAIT)
    with pytest.raises(UsageError, match=r"'a'.*running"):
        proxy.delete_child("a").get(timeout=WAIT)


def test_delete_child_forgets_a_stopped_child(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec(n, journal) for n in "ab"])
    proxy = supervisor_proxy(sup)
    proxy.terminate_child("a").get(timeout=WAIT)
    proxy.delete_child("a").get(timeout=WAIT)
    assert [c.id for c in children(sup)] == ["b"]
    proxy.start_child(worker_spec("a", journal)).get(timeout=WAIT)
    assert running(sup) == ["b", "a"]


def test_dynamic_child_is_restarted_by_the_strategy(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.REST_FOR_ONE, [worker_spec("a", journal)])
    supervisor_proxy(sup).start_child(worker_spec("b", journal)).get(timeout=WAIT)
    end_child(sup, "a", crash)
    assert journal.names("start") == ["a", "b", "a", "b"]


def test_count_children_tells_supervisors_from_workers(journal: Journal) -> None:
    specs = [
        worker_spec("a", journal),
        Supervisor.child_spec("sub", Strategy.ONE_FOR_ONE),
        worker_spec("b", journal, Restart.TRANSIENT),
    ]
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, specs)
    end_child(sup, "b", lambda ref: ref.stop())
    counts = supervisor_proxy(sup).count_children().get(timeout=WAIT)
    assert counts == ChildCounts(specs=3, active=2, supervisors=1, workers=1)


def test_repr_shows_name_strategy_and_children_count(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.REST_FOR_ONE, [worker_spec(n, journal) for n in "ab"])
    shown = sup.ask(ProxyCall(attr_path=("__repr__",), args=(), kwargs={}), timeout=WAIT)
    assert shown == "<Supervisor s REST_FOR_ONE children=2>"


def test_statistics_is_a_frozen_snapshot(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    end_child(sup, "a", crash)
    stats = supervisor_proxy(sup).statistics().get(timeout=WAIT)
    assert (stats.name, stats.strategy, stats.restarts_total) == ("s", Strategy.ONE_FOR_ONE, 1)
    assert [(c.id, c.restart_count) for c in stats.children] == [("a", 1)]
    with pytest.raises(AttributeError):
        stats.restarts_total = 5  # type: ignore[misc]


def test_supervised_actor_knows_its_supervisor_and_child_id(journal: Journal) -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE, [worker_spec("a", journal)])
    worker = children(sup)[0].ref
    assert worker is not None
    proxy = worker.proxy()
    assert proxy.child_id.get(timeout=WAIT) == "a"
    assert proxy.supervisor_ref.get(timeout=WAIT).actor_urn == sup.actor_urn


def test_unsupervised_actor_runs_on_a_daemon_pool_thread_and_has_no_supervisor() -> None:
    ref = Worker.start("solo", Journal())
    assert ref.proxy().supervisor_ref.get(timeout=WAIT) is None
    assert ref.proxy().child_id.get(timeout=WAIT) == "Worker"
    thread = ref.proxy().current_thread().get(timeout=WAIT)
    assert thread.daemon and thread.name.startswith("actorcluster-actor-")


def test_unknown_message_to_a_supervised_actor_is_logged() -> None:
    from structlog.testing import capture_logs

    ref = Worker.start("solo", Journal())
    with capture_logs() as logs:
        ref.ask(42, timeout=WAIT)
    assert [(e["event"], e["message"]) for e in logs] == [("actor.unknown_message", "int")]
