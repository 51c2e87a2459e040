"""Small things a new user meets first: every accepted key named when one is unknown,
and a finished task's repr showing what its functions returned."""

from __future__ import annotations

import pytest

from actorcluster import ConfigurationError, Runtime, RuntimeTask
from actorcluster.runtimes.options import RUNTIME_KWARGS


def test_an_unknown_connection_kwarg_names_every_accepted_key_with_the_runtimes():
    with pytest.raises(ConfigurationError) as caught:
        Runtime("localhost", connection_kwargs={"pyhton": "/usr/bin/python3"})
    message = str(caught.value)
    assert "pyhton" in message
    accepted = message.split("accepted keys: ", 1)[1].split(", ")
    assert set(RUNTIME_KWARGS) <= set(accepted)
    assert {"python", "user", "port", "connect_kwargs", "ssh_config_path"} <= set(accepted)


def test_a_finished_tasks_repr_shows_its_function_returns_shortened():
    with Runtime("localhost") as runtime:
        task = RuntimeTask("returns").run_function(lambda: {"answer": 42})
        task.run_function(lambda: "x" * 10_000)
        assert "returns=" not in repr(task)
        runtime.execute_task(task, execute_async=False)
        shown = repr(task)
    assert "done" in shown
    assert "returns=[{'answer': 42}, 'xxxxxxxxxxxxxxxxx" in shown
    assert len(shown) < 200
