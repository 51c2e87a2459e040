"""Restart policies as laws, checked by hypothesis on a real supervisor driven by the
injected ManualClock: OTP's intensity gives up exactly when one restart too many falls
in a period; ``max_restarts=None`` never gives up, and its backoff grows with each
restart in a row (capped) and starts over after a run of a whole period."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster.errors import ConfigurationError
from actorcluster.supervisors import (
    Backoff,
    ManualClock,
    Restart,
    Strategy,
    Supervisor,
    join_actor,
)
from supervisor_fakes import WAIT, Journal, children, crash, ref_of, stop_every_actor, worker_spec

pytestmark = [pytest.mark.usefixtures("no_actors_left"), pytest.mark.timeout(120)]

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Recording(Supervisor):
    """A supervisor that records every restart it schedules as (attempt, delay)."""

    def __init__(self, scheduled: list[tuple[int, float]], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._scheduled = scheduled

    def on_restart_scheduled(self, child_id: str, attempt: int, delay: float) -> None:
        self._scheduled.append((attempt, delay))


def _start(scheduled, clock, *, max_restarts, period, backoff):
    journal = Journal()
    ref = Recording.start(
        scheduled,
        "s",
        Strategy.ONE_FOR_ONE,
        [worker_spec("w", journal, Restart.PERMANENT)],
        max_restarts=max_restarts,
        period=period,
        backoff=backoff,
        clock=clock,
    )
    children(ref)
    return ref


@given(
    runs=st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=8),
    period=st.floats(min_value=1.0, max_value=20.0),
    initial=st.floats(min_value=0.01, max_value=2.0),
    multiplier=st.floats(min_value=1.0, max_value=4.0),
    maximum=st.floats(min_value=2.0, max_value=60.0),
)
@EXAMPLES
def test_forever_never_gives_up_and_its_backoff_grows_capped_and_starts_over(
    runs, period, initial, multiplier, maximum
):
    """Each entry of ``runs`` is how long an incarnation runs before it crashes."""
    clock, scheduled = ManualClock(), []
    backoff = Backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=0.0)
    ref = _start(scheduled, clock, max_restarts=None, period=period, backoff=backoff)
    streak, started = 0, clock.monotonic()
    try:
        for index, ran in enumerate(runs):
            clock.advance(ran)
            ran_for = clock.monotonic() - started  # as the supervisor reads it
            crash(ref_of(ref, "w"))
            assert clock.wait_for_pending(1, WAIT), "no restart scheduled"
            if ran_for >= period:
                streak = 0  # a whole period of running: the backoff starts over
            attempt, delay = scheduled[index]
            assert attempt == streak
            assert delay == pytest.approx(min(maximum, initial * multiplier**streak))
            assert delay <= maximum
            streak += 1
            clock.advance(clock.next_due() - clock.monotonic())  # exactly the delay
            started = clock.monotonic()
            assert [c.id for c in children(ref) if c.alive] == ["w"], "not restarted"
        assert ref.is_alive(), "a supervisor without a limit gave up"
    finally:
        stop_every_actor()


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=10),
    max_restarts=st.integers(min_value=0, max_value=4),
    period=st.floats(min_value=1.0, max_value=20.0),
)
@EXAMPLES
def test_intensity_gives_up_exactly_when_one_restart_too_many_falls_in_a_period(
    gaps, max_restarts, period
):
    """``gaps``: seconds between crashes; restarts are immediate (no backoff)."""
    clock, scheduled = ManualClock(), []
    ref = _start(scheduled, clock, max_restarts=max_restarts, period=period, backoff=None)
    window: list[float] = []
    try:
        for gap in gaps:
            clock.advance(gap)
            now = clock.monotonic()
            window = [t for t in window if t > now - period] + [now]
            child = ref_of(ref, "w")
            crash(child)
            assert join_actor(child, timeout=WAIT)  # its exit is in the supervisor's inbox
            if len(window) > max_restarts:
                ref.actor_stopped.wait(WAIT)
                assert not ref.is_alive(), f"{len(window)} restarts in {period} s allowed"
                return
            assert [c.id for c in children(ref) if c.alive] == ["w"]
        assert ref.is_alive()
    finally:
        stop_every_actor()


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    backoff=st.builds(
        lambda initial, extra, multiplier, jitter: Backoff(
            initial=initial, maximum=initial + extra, multiplier=multiplier, jitter=jitter
        ),
        st.floats(min_value=0.0, max_value=5.0),
        st.floats(min_value=0.0, max_value=100.0),
        st.floats(min_value=1.0, max_value=10.0),
        st.floats(min_value=0.0, max_value=1.0),
    ),
)
def test_a_jittered_delay_stays_within_its_bounds_and_the_base_never_shrinks(
    attempt, rand, backoff
):
    jitter = backoff.jitter
    delay = backoff.delay(attempt, lambda: rand)
    base = backoff.base_delay(attempt)
    assert 0.0 <= delay <= backoff.maximum * (1 + jitter)
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9
    assert backoff.base_delay(attempt + 1) >= base
    assert base <= backoff.maximum


def test_max_restarts_must_be_a_count_or_none():
    with pytest.raises(ConfigurationError, match="or None"):
        Supervisor("s", Strategy.ONE_FOR_ONE, max_restarts=-1)
