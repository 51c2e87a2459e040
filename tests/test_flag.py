"""Flag: threading.Event's behaviour, waits bounded, each waiter woken by its own flag."""

from __future__ import annotations

import threading
import time

import pykka
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster.supervisors import SupervisedActor
from actorcluster.supervisors._flag import Flag


def test_a_flag_is_an_event_that_is_set_cleared_and_waited_for():
    flag = Flag()
    assert isinstance(flag, threading.Event)
    assert not flag.is_set() and not flag.wait(0.01)
    flag.set()
    assert flag.is_set() and flag.wait() and flag.wait(0)
    flag.clear()
    assert not flag.is_set()


def test_a_wait_with_a_timeout_ends_on_time():
    started = time.monotonic()
    assert Flag().wait(0.2) is False
    assert 0.19 <= time.monotonic() - started < 5


@settings(max_examples=20, deadline=None)
@given(order=st.permutations(range(6)))
def test_each_waiter_wakes_when_its_own_flag_is_set_whatever_the_order(order):
    flags = [Flag() for _ in order]
    woken: list[int] = []
    changed = threading.Condition()
    waiting = threading.Barrier(len(flags) + 1)

    def wait_for(number: int) -> None:
        waiting.wait(timeout=10)
        assert flags[number].wait(timeout=10)
        with changed:
            woken.append(number)
            changed.notify_all()

    threads = [threading.Thread(target=wait_for, args=(n,)) for n in range(len(flags))]
    for thread in threads:
        thread.start()
    waiting.wait(timeout=10)
    for done, number in enumerate(order, start=1):
        flags[number].set()
        with changed:
            assert changed.wait_for(lambda: len(woken) >= done, timeout=10)  # noqa: B023
            assert sorted(woken) == sorted(order[:done])  # nobody else woke for good
    for thread in threads:
        thread.join(timeout=10)


def test_an_actor_ref_sees_the_actor_stop_through_the_same_flag():
    ref = SupervisedActor.start()
    assert ref.is_alive() and isinstance(ref.actor_stopped, Flag)
    ref.stop(timeout=10)
    assert not ref.is_alive() and ref.actor_stopped.wait(timeout=10)
    assert not pykka.ActorRegistry.get_by_urn(ref.actor_urn)


def test_pykkas_registry_keeps_its_api_over_the_constant_time_table():
    from actorcluster.supervisors._registry import RefTable

    assert isinstance(pykka.ActorRegistry._actor_refs, RefTable)
    before = pykka.ActorRegistry.get_all()
    refs = [SupervisedActor.start() for _ in range(3)]
    try:
        assert pykka.ActorRegistry.get_all()[-3:] == refs  # start order
        assert pykka.ActorRegistry.get_by_urn(refs[1].actor_urn) is refs[1]
        assert refs[0] in pykka.ActorRegistry.get_by_class(SupervisedActor)
        refs[1].stop(timeout=10)
        assert pykka.ActorRegistry.get_all()[-2:] == [refs[0], refs[2]]
        pykka.ActorRegistry.unregister(refs[1])  # again: not found, no error (pykka's)
    finally:
        for ref in refs:
            ref.stop(timeout=10)
    assert pykka.ActorRegistry.get_all() == before
