"""A task whose runtime gives up on a host that stays down fails with
HostUnreachableError naming the host (the CLI's exit for an unreachable host), not
TaskCancelledError (which the CLI reports as exit 130, as if the user pressed Ctrl-C);
a task the user's cleanup() stops is still a TaskCancelledError."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actorcluster import HostUnreachableError, Runtime, RuntimeTask, TaskCancelledError
from actorcluster.actors import runtime_tree

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_task_on_a_host_that_stays_down_fails_host_unreachable(
    make_ssh_bed: Callable[[int], SshBed], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime gives up after 3 restarts instead of 30 (about a minute): same path.
    monkeypatch.setattr(runtime_tree, "MAX_RESTARTS", 3)
    bed = make_ssh_bed(1)
    kwargs = {**bed.connection_kwargs, "heartbeat_timeout": 2, "heartbeat_interval": 0.5}
    rt = Runtime("host-1", connection_kwargs=kwargs)
    try:
        future = rt.execute_task(RuntimeTask("long").run_command("sleep 300"), execute_async=True)
        bed.hosts[0].stop()  # sshd and every session (the agent too) gone
        with pytest.raises(HostUnreachableError, match="host-1") as caught:
            future.get(timeout=90)
        assert not isinstance(caught.value, TaskCancelledError)
    finally:
        rt.cleanup()


def test_a_task_stopped_by_cleanup_is_cancelled(ssh_bed: SshBed) -> None:
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    task = RuntimeTask("long").run_command("sleep 300")
    rt.execute_task(task, execute_async=True)
    rt.cleanup()
    assert task.future is not None
    with pytest.raises(TaskCancelledError):
        task.future.get(timeout=30)
