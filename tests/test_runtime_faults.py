"""Real faults: a host's sshd dies, the agent is killed, the client is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actorcluster import HostUnreachableError, Runtime, RuntimeTask
from waiting import wait_until

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_dying_host_fails_the_running_task_after_the_grace_and_the_runtime_comes_back(
    make_ssh_bed,
):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    kwargs = {**bed.connection_kwargs, "session_grace": 3.0}
    with Runtime("host-1", connection_kwargs=kwargs) as rt:
        future = rt.execute_task(RuntimeTask("long").run_command("sleep 60"))
        rt.echo("the task is in flight")
        host.stop()
        with pytest.raises(HostUnreachableError) as caught:
            future.get(timeout=10)
        assert "host-1" in str(caught.value)
        host.start()
        rt.wait_ready(timeout=30)
        task = RuntimeTask("after").run_command("echo back")
        rt.execute_task(task, execute_async=False)
        assert task.execution_log == ["back\n"]


def test_a_killed_agent_is_restarted_and_the_running_task_fails_clearly(ssh_bed, tmp_path):
    marker = tmp_path / "sleep.pid"
    with Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        first = rt._handle.context.agent().hello["pid"]
        future = rt.execute_task(
            RuntimeTask("long").run_command(f"sleep 60 & echo $! > {marker}; wait")
        )
        wait_until(lambda: marker.exists() and marker.read_text().strip(), what="the sleep started")
        os.kill(first, signal.SIGKILL)
        with pytest.raises(HostUnreachableError, match="host-2"):
            future.get(timeout=10)
        # Its watchdog killed what the dead agent had started: no orphan.
        wait_until(lambda: not _alive(int(marker.read_text())), what="the orphan was killed")
        rt.wait_ready(timeout=30)
        assert rt._handle.context.agent().hello["pid"] != first
        assert rt.echo("again").strip() == "again"


CLIENT = textwrap.dedent(
    """
    import sys
    from actorcluster import Runtime, RuntimeTask
    kwargs = {"ssh_config_path": sys.argv[2], "session_grace": 2.0}
    rt = Runtime(sys.argv[1], connection_kwargs=kwargs)
    marker = sys.argv[3]
    rt.execute_task(RuntimeTask("bg").run_command(f"sleep 120 & echo $! > {marker}; wait"))
    print("WORKING_DIR", rt.working_dir, flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("host", ["host-3", "localhost"])
def test_a_sigkilled_client_leaves_nothing_behind_on_the_host(ssh_bed, tmp_path, host):
    marker = tmp_path / "sleep.pid"
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, host, str(ssh_bed.ssh_config), str(marker)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert client.stdout is not None
        line = client.stdout.readline().decode()
        while line and not line.startswith("WORKING_DIR "):
            line = client.stdout.readline().decode()
        working_dir = line.split(" ", 1)[1].strip()
        assert working_dir and os.path.isdir(working_dir)
        wait_until(
            lambda: marker.exists() and marker.read_text().strip(), what="the remote sleep started"
        )
        sleeper = int(marker.read_text())
        assert _alive(sleeper)
        client.kill()
        client.wait(timeout=10)
        # Once the session's grace (2 s here) passed without a reconnect: nothing left.
        wait_until(lambda: not _alive(sleeper), timeout=15, what="the remote process was killed")
        wait_until(
            lambda: not os.path.exists(working_dir), timeout=15, what="the temp dir was removed"
        )
    finally:
        client.kill()
        client.wait(timeout=10)
        if client.stdin:
            client.stdin.close()
        if client.stdout:
            client.stdout.close()
