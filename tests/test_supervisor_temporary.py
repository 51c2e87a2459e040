"""Temporary children started with start_temporary (a task each): the supervisor takes
them in without a message of their own, knows them before it answers anything, stops
them with the others, and forgets them when they end."""

from __future__ import annotations

from typing import Any

import pykka
import pytest
from structlog.testing import capture_logs

from actorcluster.supervisors import ChildSpec, Restart, Strategy, Supervisor, start_temporary
from supervisor_fakes import WAIT, Journal, Worker, children, end_child, start_supervisor

pytestmark = pytest.mark.usefixtures("no_actors_left")


def _spec(name: str, journal: Journal) -> ChildSpec:
    return ChildSpec(name, lambda: Worker.start(name, journal), Restart.TEMPORARY, WAIT)


class _Counting(Supervisor):
    """A supervisor that notes the messages it receives (not the proxy calls)."""

    received: list[str]

    def on_receive(self, message: Any) -> Any:
        self.received.append(type(message).__name__)
        return super().on_receive(message)


def test_start_temporary_tells_the_supervisor_nothing_yet_it_knows_the_child() -> None:
    _Counting.received = []
    sup = _Counting.start("s", Strategy.ONE_FOR_ONE)
    ref = start_temporary(sup, _spec("t", Journal()))
    assert [(c.id, c.ref, c.alive) for c in children(sup)] == [("t", ref, True)]
    assert _Counting.received == []  # no message (and no turn of the supervisor) per child


def test_a_temporary_child_that_ends_is_forgotten_and_its_exit_logged() -> None:
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    start_temporary(sup, _spec("t", Journal()))
    with capture_logs() as logs:
        assert end_child(sup, "t", lambda ref: ref.stop()) == []
    exits = [(e["event"], e["child"]) for e in logs if e["event"] == "supervisor.child.exited"]
    assert exits == [("supervisor.child.exited", "t")]


def test_stopping_the_supervisor_stops_a_temporary_child_it_never_had_a_message_about() -> None:
    journal = Journal()
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    ref = start_temporary(sup, _spec("t", journal))
    sup.stop(timeout=WAIT)
    assert journal.names("stop") == ["t"]
    assert not ref.is_alive()


def test_a_temporary_child_whose_exit_was_handled_before_it_was_known_is_not_kept() -> None:
    journal = Journal()
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)

    def start_and_end() -> pykka.ActorRef[Any]:
        ref = Worker.start("t", journal)
        ref.stop()
        children(sup)  # answered after the supervisor handled the exit: a stranger's
        return ref

    start_temporary(sup, ChildSpec("t", start_and_end, Restart.TEMPORARY, WAIT))
    assert children(sup) == []
    assert journal.names("stop") == ["t"]


def test_start_temporary_on_a_stopped_supervisor_raises_and_stops_the_child() -> None:
    journal = Journal()
    sup = start_supervisor("s", Strategy.ONE_FOR_ONE)
    sup.stop(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        start_temporary(sup, _spec("t", journal))
    journal.wait_count("stop", "t", 1)
