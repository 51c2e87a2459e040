"""Law of the execution log: one entry per executed step, in order, ending exactly at
the first failing step (hypothesis drives random step lists on the local runtime)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster import Runtime, RuntimeTask, TaskExecutionError


@pytest.fixture(scope="module")
def runtime():
    rt = Runtime("localhost")
    yield rt
    rt.cleanup()


def _raise(n: int) -> None:
    raise ValueError(n)


STEP = st.one_of(
    st.integers(0, 999).map(lambda n: ("ok-command", n)),
    st.integers(1, 120).map(lambda n: ("fail-command", n)),
    st.integers(0, 999).map(lambda n: ("ok-function", n)),
    st.integers(0, 999).map(lambda n: ("fail-function", n)),
)


def _build(steps: list[tuple[str, int]]) -> RuntimeTask:
    task = RuntimeTask("property")
    for kind, n in steps:
        if kind == "ok-command":
            task.run_command(f"echo {n}")
        elif kind == "fail-command":
            task.run_command(f"echo failing {n}; exit {n}")
        elif kind == "ok-function":
            task.run_function(lambda n=n: print(n) or n)
        else:
            task.run_function(_raise, n=n)
    return task


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_the_log_has_one_entry_per_executed_step_and_stops_at_the_first_failure(runtime, steps):
    first_failure = next((i for i, (kind, _) in enumerate(steps) if kind.startswith("fail")), None)
    task = _build(steps)
    if first_failure is None:
        runtime.execute_task(task, execute_async=False)
        executed = steps
    else:
        with pytest.raises(TaskExecutionError) as caught:
            runtime.execute_task(task, execute_async=False)
        assert caught.value.step == first_failure
        if steps[first_failure][0] == "fail-command":
            assert caught.value.exit_code == steps[first_failure][1]
        executed = steps[: first_failure + 1]
    log = task.execution_log
    assert len(log) == len(executed)
    for entry, (kind, n) in zip(log, executed, strict=False):
        expected = {
            "ok-command": f"{n}\n",
            "fail-command": f"failing {n}\n",
            "ok-function": f"{n}\n",
        }
        if kind in expected:
            assert entry == expected[kind]
    returns = [n for kind, n in executed if kind == "ok-function"]
    assert list(task.function_returns) == returns
