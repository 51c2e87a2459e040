"""Input that cannot work is a typed ActorClusterError naming what is wrong, not a
UnicodeError from the resolver or a FrameError from the wire: a 5,000-character host,
a host label over DNS's 63 characters, a 100 MB environment value, a variable named
"" or holding "=" or NUL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actorcluster import ActorClusterError, Runtime, RuntimeTask, UsageError
from actorcluster.errors import InvalidRuntimeError

if TYPE_CHECKING:
    from sshbed import SshBed


@pytest.mark.parametrize("host", ["x" * 5000, "a" * 70 + ".example", "two words"])
def test_an_impossible_host_is_a_typed_error(host: str) -> None:
    with pytest.raises(ActorClusterError) as caught:
        Runtime(host)
    assert isinstance(caught.value, (UsageError, InvalidRuntimeError)), repr(caught.value)
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"BIG": "v" * (100 * 1024 * 1024)}, "send large data as a file"),
        ({"": "value"}, "non-empty"),
        ({"A=B": "value"}, "'='"),
        ({"NUL": "a\0b"}, "NUL"),
    ],
)
def test_an_environment_that_cannot_be_set_is_a_typed_error(
    ssh_bed: SshBed, env: dict[str, str], says: str
) -> None:
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        with pytest.raises(UsageError, match=says):
            rt.add_env_variables(env)
        task = RuntimeTask("env").run_command("true")
        with pytest.raises(UsageError, match=says):
            task.env_variables = env
        rt.env_variables["ok"] = "fine"  # and the runtime still works
        done = rt.execute_task(RuntimeTask("ok").run_command("echo $ok"), execute_async=False)
        assert done.execution_log == ["fine\n"]
    finally:
        rt.cleanup()
