"""The process's shared timer thread: a cancelled timer never runs and holds nothing
(a task's cancel grace must not keep its finished actor alive until it is due)."""

from __future__ import annotations

import gc
import threading
import weakref

from actorcluster._timers import Timers


class _Held:
    """Something a callback refers to (its bound method is the callback)."""

    def __init__(self) -> None:
        self.ran = threading.Event()

    def run(self) -> None:
        self.ran.set()


def test_a_cancelled_timer_does_not_run_and_lets_go_of_its_callback():
    timers = Timers("test-timers")
    held = _Held()
    ran = held.ran
    handle = timers.call_later(60, held.run)
    alive = weakref.ref(held)
    del held
    gc.collect()
    assert alive() is not None  # a pending timer keeps its callback
    handle.cancel()
    gc.collect()
    assert alive() is None  # not kept for the minute the handle waits in the heap
    assert handle.cancelled and not ran.is_set()


def test_timers_run_in_order_and_a_cancelled_one_is_skipped():
    timers = Timers("test-timers")
    seen: list[str] = []
    done = threading.Event()
    timers.call_later(0.02, lambda: seen.append("first"))
    timers.call_later(0.03, lambda: seen.append("cancelled")).cancel()
    timers.call_later(0.05, lambda: (seen.append("last"), done.set()))
    assert done.wait(10)
    assert seen == ["first", "last"]
