"""A function's return value is loaded only within the runtime's memory budget:
``max_return_size`` (default 16 MiB), checked before anything is unpickled."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import pytest

from actorcluster import (
    ConfigurationError,
    RemoteFunctionError,
    ReturnValueTooLargeError,
    Runtime,
    RuntimeTask,
)
from actorcluster.steps.returns import DEFAULT_MAX_RETURN_SIZE, estimated_size

if TYPE_CHECKING:
    from sshbed import SshBed

pytestmark = pytest.mark.timeout(120)


def many_sets() -> list[set[int]]:
    """2 MB pickled, about 230 MB once loaded."""
    return [set() for _ in range(1_000_000)]


class HugeError(Exception):
    """Raised with 2 MB of sets that would take 230 MB to load."""


def raises_huge() -> None:
    raise HugeError([set() for _ in range(1_000_000)])


def small() -> dict[str, int]:
    return {"answer": 42}


def test_a_return_value_past_the_budget_is_a_typed_error_and_within_it_loads(
    ssh_bed: SshBed,
) -> None:
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        task = RuntimeTask("sets").run_function(many_sets)
        with pytest.raises(ReturnValueTooLargeError, match="max_return_size") as caught:
            rt.execute_task(task).get(timeout=60)
        assert "host-1" in str(caught.value)
        failing = RuntimeTask("raises").run_function(raises_huge)
        with pytest.raises(RemoteFunctionError) as raised:
            rt.execute_task(failing).get(timeout=60)
        assert "HugeError" in str(raised.value)
        assert raised.value.exception is None  # over the budget: never loaded
        ok = rt.execute_task(RuntimeTask("small").run_function(small)).get(timeout=60)
        assert list(ok.function_returns) == [{"answer": 42}]
    finally:
        rt.cleanup()
    roomy = {**ssh_bed.connection_kwargs, "max_return_size": 512 * 1024 * 1024}
    rt = Runtime("host-1", connection_kwargs=roomy)
    try:
        done = rt.execute_task(RuntimeTask("sets").run_function(many_sets)).get(timeout=60)
        assert len(next(iter(done.function_returns))) == 1_000_000
        with pytest.raises(RemoteFunctionError) as raised:
            rt.execute_task(RuntimeTask("raises").run_function(raises_huge)).get(timeout=60)
        assert isinstance(raised.value.exception, HugeError)  # within the budget: loaded
    finally:
        rt.cleanup()


def test_the_estimate_bounds_what_plain_data_takes() -> None:
    budget = DEFAULT_MAX_RETURN_SIZE
    assert estimated_size(pickle.dumps(list(range(100))), budget) < budget
    bomb = b"\x80\x04(" + b"\x8f" * (1 << 20) + b"l."
    assert estimated_size(bomb, budget) > budget


def test_a_bad_budget_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_return_size"):
        Runtime("localhost", connection_kwargs={"max_return_size": -1})
