"""Bad input never gets past the front door: whatever junk a caller passes, the answer
is a typed UsageError (a ValueError) naming what was wrong, and nothing is started."""

from __future__ import annotations

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster import Runtime, RuntimeTask, UsageError

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just(""),
    st.just("   "),
)
RUNTIME_KWARG_NAMES = [
    "python",
    "shell",
    "heartbeat_interval",
    "heartbeat_timeout",
    "reconnect_wait",
]
SSH_KWARG_NAMES = ["user", "port", "connect_timeout", "known_hosts", "accept_new_host_keys"]


@settings(max_examples=60, deadline=None)
@given(host=junk)
def test_a_host_that_is_not_a_name_is_a_usage_error(host):
    runtimes_before = _runtime_actors()
    with pytest.raises(UsageError, match="host"):
        Runtime(host)
    assert _runtime_actors() == runtimes_before  # nothing was started


def _runtime_actors() -> int:
    return sum(
        1 for ref in pykka.ActorRegistry.get_all() if "Supervisor" in ref.actor_class.__name__
    )


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(RUNTIME_KWARG_NAMES + SSH_KWARG_NAMES), value=junk)
def test_a_bad_connection_setting_is_refused_by_name(name, value):
    try:
        runtime = Runtime("localhost", connection_kwargs={name: value})
    except UsageError as error:
        message = str(error)
    else:  # some junk is a valid value (e.g. accept_new_host_keys=True): it must work
        runtime.cleanup()
        return
    assert name in message


@settings(max_examples=60, deadline=None)
@given(value=junk)
def test_task_steps_refuse_junk(value):
    task = RuntimeTask("junk")
    for add in (task.run_command, task.send_file, task.get_file):
        with pytest.raises(UsageError):
            add(value)
    if not callable(value):
        with pytest.raises(UsageError):
            task.run_function(value)
