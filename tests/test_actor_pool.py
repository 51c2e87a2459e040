"""Actors on the shared pool behave as pykka's threading actors, without a thread each."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster.supervisors._pool import BUSY_WORKERS, IDLE_SECONDS, POOL, PooledActor
from waiting import wait_until

WAIT = 10.0


class Recorder(PooledActor):
    """Records what it receives; can block on an event, fail, or report its thread."""

    def __init__(self, seen: list[Any] | None = None, fail_start: bool = False) -> None:
        super().__init__()
        self.seen = seen if seen is not None else []
        self.fail_start = fail_start
        self.failures: list[str] = []
        self.stopped = threading.Event()

    def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError("no start")

    def on_stop(self) -> None:
        self.stopped.set()

    def on_failure(self, *exc_info: Any) -> None:
        self.failures.append(repr(exc_info[1]))

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("block", event):
                event.wait(WAIT)
            case ("raise", text):
                raise ValueError(text)
            case "thread":
                return threading.current_thread().name
            case _:
                self.seen.append(message)
        return message

    def record(self) -> list[Any]:
        return list(self.seen)


def _stop(*refs: pykka.ActorRef[Any]) -> None:
    for ref in refs:
        if ref.is_alive():
            ref.stop(block=True, timeout=WAIT)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers()), max_size=60))
def test_every_actor_gets_its_messages_once_and_in_order(sends: list[tuple[int, int]]) -> None:
    refs = [Recorder.start() for _ in range(5)]
    try:
        for target, value in sends:
            refs[target].tell(value)
        for index, ref in enumerate(refs):
            expected = [value for target, value in sends if target == index]
            assert ref.proxy().record().get(timeout=WAIT) == expected
    finally:
        _stop(*refs)


def test_blocked_handlers_do_not_starve_other_actors() -> None:
    release = threading.Event()
    blocked = [Recorder.start() for _ in range(BUSY_WORKERS + 3)]
    free = Recorder.start()
    try:
        for ref in blocked:
            ref.tell(("block", release))
        assert free.ask("hello", timeout=WAIT) == "hello"
    finally:
        release.set()
        _stop(*blocked, free)


def test_an_idle_actor_holds_no_thread_and_idle_workers_end() -> None:
    refs = [Recorder.start() for _ in range(20)]
    try:
        assert all(ref.ask("thread", timeout=WAIT).startswith("actorcluster-actor") for ref in refs)
        wait_until(lambda: POOL.workers == 0, IDLE_SECONDS + 5, "the pool's workers ended")
        assert refs[0].ask("still here", timeout=WAIT) == "still here"
    finally:
        _stop(*refs)


def test_pykka_semantics_hold() -> None:
    ref = Recorder.start()
    proxy = ref.proxy()
    with pytest.raises(ValueError, match="to the caller"):
        ref.ask(("raise", "to the caller"), timeout=WAIT)
    assert ref.is_alive()  # an ask's exception goes to the caller; the actor lives on
    ref.tell(("raise", "crash"))
    wait_until(lambda: not ref.is_alive(), what="the actor stopped after a failing tell")
    assert proxy  # the proxy was built while the actor lived
    failing = Recorder.start(fail_start=True)
    wait_until(lambda: not failing.is_alive(), what="a failing on_start stops the actor")
    with pytest.raises(pykka.ActorDeadError):
        failing.tell("late")


def test_stop_answers_what_was_queued_behind_it() -> None:
    release = threading.Event()
    ref = Recorder.start()
    ref.tell(("block", release))
    stopping = ref.stop(block=False)
    late = ref.ask("late", block=False)
    release.set()
    stopping.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=WAIT)
