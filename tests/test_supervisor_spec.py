"""Child specs, supervisor arguments, backoff, the clocks, the intensity window and the
supervision messages: the parts that need no running actor."""

from __future__ import annotations

import math
import pickle
import threading
from typing import Any

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorcluster import supervisors
from actorcluster.errors import ConfigurationError, SupervisorGaveUpError
from actorcluster.messages.supervision import ChildExited, _RestartDue
from actorcluster.supervisors import (
    Backoff,
    ChildSpec,
    ManualClock,
    Restart,
    Strategy,
    Supervisor,
    SystemClock,
)
from actorcluster.supervisors._window import RestartWindow


def _start() -> Any:
    raise AssertionError("never started in these tests")


def test_every_public_name_is_exported_once() -> None:
    assert len(supervisors.__all__) == len(set(supervisors.__all__))
    for name in supervisors.__all__:
        assert getattr(supervisors, name).__doc__, name


def test_child_spec_defaults_are_permanent_with_five_seconds_to_stop() -> None:
    spec = ChildSpec("a", _start)
    assert (spec.restart, spec.shutdown_timeout) == (Restart.PERMANENT, 5.0)
    with pytest.raises(AttributeError):
        spec.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": "", "start": _start}, "ChildSpec.id"),
        ({"id": 3, "start": _start}, "ChildSpec.id"),
        ({"id": "a", "start": "not callable"}, "ChildSpec.start"),
        ({"id": "a", "start": _start, "restart": "permanent"}, "ChildSpec.restart"),
        ({"id": "a", "start": _start, "shutdown_timeout": 0}, "ChildSpec.shutdown_timeout"),
        ({"id": "a", "start": _start, "shutdown_timeout": -1.0}, "ChildSpec.shutdown_timeout"),
        ({"id": "a", "start": _start, "shutdown_timeout": math.inf}, "ChildSpec.shutdown_timeout"),
        ({"id": "a", "start": _start, "shutdown_timeout": True}, "ChildSpec.shutdown_timeout"),
    ],
)
def test_invalid_child_spec_raises_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        ChildSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "Supervisor.name"),
        ({"strategy": "one_for_one"}, "Supervisor.strategy"),
        ({"max_restarts": -1}, "Supervisor.max_restarts"),
        ({"max_restarts": 1.5}, "Supervisor.max_restarts"),
        ({"period": 0}, "Supervisor.period"),
        ({"backoff": 1.0}, "Supervisor.backoff"),
        ({"children": ["spec"]}, "Supervisor.children"),
        ({"children": [ChildSpec("a", _start), ChildSpec("a", _start)]}, "'a' twice"),
    ],
)
def test_invalid_supervisor_arguments_raise_naming_them(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"name": "s", "strategy": Strategy.ONE_FOR_ONE, **kwargs}
    with pytest.raises(ConfigurationError, match=field):
        Supervisor.start(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": -1.0}, "Backoff.initial"),
        ({"initial": 3.0, "maximum": 2.0}, "Backoff.maximum"),
        ({"multiplier": 0.5}, "Backoff.multiplier"),
        ({"jitter": -0.1}, "Backoff.jitter"),
        ({"jitter": 1.5}, "Backoff.jitter"),
    ],
)
def test_invalid_backoff_raises_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        Backoff(**kwargs)


backoffs = st.builds(
    lambda initial, extra, multiplier, jitter: Backoff(
        initial, initial + extra, multiplier, jitter
    ),
    st.floats(0.0, 10.0),
    st.floats(0.0, 100.0),
    st.floats(1.0, 10.0),
    st.floats(0.0, 1.0),
)


@given(backoffs, st.integers(-5, 10_000), st.floats(0.0, 1.0, exclude_max=True))
def test_backoff_delay_stays_within_zero_and_the_jittered_maximum(
    backoff: Backoff, attempt: int, rand: float
) -> None:
    delay = backoff.delay(attempt, lambda: rand)
    assert 0.0 <= delay <= backoff.maximum * (1 + backoff.jitter)


@given(backoffs, st.integers(0, 2_000))
def test_backoff_expectation_never_decreases_and_is_the_unjittered_delay(
    backoff: Backoff, attempt: int
) -> None:
    assert backoff.base_delay(attempt) <= backoff.base_delay(attempt + 1)
    assert backoff.delay(attempt, lambda: 0.5) == pytest.approx(backoff.base_delay(attempt))


def test_backoff_first_delay_is_the_initial_one_and_grows_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0, multiplier=2.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_manual_clock_runs_due_callbacks_in_order_when_advanced() -> None:
    clock = ManualClock(start=100.0)
    fired: list[tuple[str, float]] = []
    clock.call_later(2.0, lambda: fired.append(("b", clock.monotonic())))
    clock.call_later(1.0, lambda: fired.append(("a", clock.monotonic())))
    cancelled = clock.call_later(1.5, lambda: fired.append(("x", clock.monotonic())))
    cancelled.cancel()
    assert clock.pending == 2
    assert clock.next_due() == 101.0
    assert clock.advance(1.0) == 1
    assert clock.advance(5.0) == 1
    assert fired == [("a", 101.0), ("b", 102.0)]
    assert clock.monotonic() == 106.0
    assert clock.pending == 0


def test_manual_clock_runs_callbacks_scheduled_by_callbacks_within_the_advance() -> None:
    clock = ManualClock()
    fired: list[float] = []

    def again() -> None:
        fired.append(clock.monotonic())
        if len(fired) < 3:
            clock.call_later(1.0, again)

    clock.call_later(1.0, again)
    clock.advance(10.0)
    assert fired == [1.0, 2.0, 3.0]


def test_manual_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1.0)


def test_manual_clock_wait_for_pending_sees_a_callback_scheduled_elsewhere() -> None:
    clock = ManualClock()
    assert not clock.wait_for_pending(1, timeout=0.01)
    threading.Thread(target=clock.call_later, args=(1.0, lambda: None), daemon=True).start()
    assert clock.wait_for_pending(1, timeout=5.0)


def test_system_clock_runs_a_callback_later_and_cancels_another() -> None:
    clock = SystemClock()
    ran = threading.Event()
    never = threading.Event()
    clock.call_later(0.01, ran.set)
    handle = clock.call_later(60.0, never.set)
    handle.cancel()
    assert ran.wait(5.0)
    assert not never.is_set()


def test_restart_window_allows_max_restarts_within_the_period() -> None:
    window = RestartWindow(max_restarts=2, period=10.0)
    assert window.record(0.0, "a")
    assert window.record(1.0, "b")
    assert not window.record(2.0, "a")
    assert window.count(2.0) == 3
    assert window.count(2.0, "a") == 2
    assert window.count(10.0) == 2  # the restart at 0.0 is exactly one period old
    assert window.record(11.5, "a")  # 0.0 and 1.0 forgotten: 2.0 and 11.5 remain
    assert window.count(11.5) == 2


@given(
    st.builds(
        ChildExited,
        child_id=st.text(min_size=1),
        actor_urn=st.text(),
        normal=st.booleans(),
        reason=st.none() | st.text(),
        error=st.none()
        | st.builds(SupervisorGaveUpError, st.text(), st.text(), st.text(), st.integers(0, 9)),
    )
    | st.builds(_RestartDue, token=st.integers())
)
def test_supervision_messages_survive_a_pickle_round_trip(message: object) -> None:
    assert cloudpickle.loads(cloudpickle.dumps(message)) == message
    assert pickle.loads(pickle.dumps(message)) == message
