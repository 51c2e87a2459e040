"""Runtime.supervise: a long-running command kept alive with OTP's restart types,
backoff and intensity, on a real sshd host; nothing left after stop, cleanup, or a
SIGKILLed client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from actorcluster import Runtime, UsageError
from actorcluster.errors import SupervisorGaveUpError
from proctree import kill_tree, matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def runtime(ssh_bed):
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as host:
        yield host


def test_a_permanent_process_is_restarted_at_once_after_a_sigkill(runtime):
    process = runtime.supervise("echo started; exec sleep 3001", name="sleeper")
    assert process.wait_running(10)
    wait_until(lambda: process.pid is not None and "started" in process.output())
    assert matching(b"sleep\x003001") == [process.pid]
    kill_tree(process.pid, kill_root=True)
    assert process.wait_restarted(1, 20)
    assert process.exit_codes == [-9]
    wait_until(lambda: process.output().count("started") == 2, what="second run printed")
    assert process.key == "host-1::process::sleeper"
    assert runtime.get_process(process.key) is process
    process.stop()
    assert process.status == "stopped" and not process.is_alive()
    assert not matching(b"sleep\x003001")


def test_past_its_intensity_a_process_fails_with_the_reason(runtime):
    process = runtime.supervise("echo boom; exit 3", max_restarts=2, period=60)
    process.join(30)
    assert process.status == "failed"
    assert isinstance(process.error, SupervisorGaveUpError)
    assert process.restart_count == 2 and process.exit_codes == [3, 3, 3]
    assert "boom" in process.output() and process.exitcode == 3


def test_transient_and_temporary_processes_are_not_restarted_after_a_clean_exit(runtime):
    transient = runtime.supervise("exit 0", restart="transient")
    temporary = runtime.supervise("exit 5", restart="temporary")
    wait_until(lambda: transient.status == "exited" and temporary.status == "exited")
    assert transient.restart_count == 0 and temporary.exit_codes == [5]
    with pytest.raises(UsageError, match="restart must be one of"):
        runtime.supervise("true", restart="always")
    with pytest.raises(UsageError, match="command"):
        runtime.supervise("   ")


def test_cleanup_kills_a_process_that_ignores_sigterm(runtime):
    runtime.supervise(
        "exec python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(999)' stubborn-7"
    )
    wait_until(lambda: matching(b"stubborn-7"))
    runtime.cleanup()
    assert not matching(b"stubborn-7")


CLIENT = textwrap.dedent(
    """
    import json, sys
    from actorcluster import Runtime
    runtime = Runtime("host-1", connection_kwargs=json.loads(sys.argv[1]))
    process = runtime.supervise("exec sleep 3002")
    process.wait_running()
    print("up", flush=True)
    sys.stdin.read()
    """
)


def test_a_sigkilled_client_leaves_no_process_behind(ssh_bed):
    kwargs = {key: str(value) for key, value in ssh_bed.connection_kwargs.items()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps(kwargs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert client.stdout.readline() == b"up\n"
        wait_until(lambda: matching(b"sleep\x003002"), what="the process up")
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
        wait_until(lambda: not matching(b"sleep\x003002"), 40, "the process killed by its agent")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
        client.stdin.close()
        client.stdout.close()
