"""``Runtime(host, keeper=True)``: the library's runtimes use the command line's
connection keeper, for real (sshd hosts): commands, functions, transfers and tunnels
through it; a second script in a fresh process makes no new SSH connection; a keeper
killed with SIGKILL under a runtime (the runtime comes back); a second local user
refused at the channel request; the same typed errors as a direct connect (unknown host,
host key refused, authentication failed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from actorcluster import (
    AuthenticationError,
    InvalidRuntimeError,
    Runtime,
    RuntimeGroup,
    RuntimeTask,
    UnknownHostError,
    UnknownHostKeyError,
)
from actorcluster.keeper.finder import ask
from actorcluster.observe import subscribe
from agent_harness import SRC
from keepers import keeper_pids, private_keepers
from test_keeper import _PROBE, other_user, probe_as  # noqa: F401 - a fixture, used by name
from test_tunnels_support import EchoServer, echo_round_trip, free_ports

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def keepers(monkeypatch):
    """A private keeper folder, for this process's runtimes too."""
    with private_keepers() as folder:
        monkeypatch.setenv("ACTORCLUSTER_KEEPER_DIR", folder)
        monkeypatch.setenv("ACTORCLUSTER_KEEPER_IDLE", "120")
        monkeypatch.delenv("ACTORCLUSTER_KEEPER", raising=False)
        yield folder


def _accepted(host) -> int:
    """How many logins the host's sshd accepted so far (its log, LogLevel VERBOSE)."""
    return host.log_path.read_bytes().count(b"Accepted publickey")


def _status(folder: str) -> dict:
    (pid,) = keeper_pids(folder)
    sockets = [name for name in os.listdir(folder) if name.endswith(".sock")]
    answer = ask(os.path.join(folder, sockets[0]), {"op": "status"}, timeout=5)
    assert answer is not None and answer["pid"] == pid
    return answer


def _echo(runtime: Runtime, text: str) -> str:
    task = RuntimeTask("echo").run_command(f"echo {text}")
    runtime.execute_task(task, execute_async=False)
    return task.execution_log[-1].strip() if task.execution_log else ""


def test_a_runtime_through_the_keeper_runs_commands_functions_files_and_tunnels(
    ssh_bed, keepers, tmp_path
):
    host = ssh_bed.hosts[0]
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs, keeper=True) as rt:
        assert _echo(rt, "through-the-keeper") == "through-the-keeper"
        assert list(rt.execute_function(lambda x: x * 2, x=21).function_returns) == [42]
        source = tmp_path / "sent.bin"
        source.write_bytes(os.urandom(8 * 2**20))
        rt.send_file(str(source), "sent.bin")
        back = tmp_path / "back.bin"
        rt.get_file("sent.bin", str(back))
        assert back.read_bytes() == source.read_bytes()
        logins = _accepted(host)
        service, local = free_ports(2)
        with EchoServer(service, on=host):
            key = rt.expose_port_from_runtime(service, local, carrier="paramiko")
            try:
                echo_round_trip(local, size=4 * 2**20)  # more than any buffer on the way
                echo_round_trip(local)
            finally:
                rt.stop_process(key)
        assert _accepted(host) == logins  # the tunnel's channels are the keeper's too
        service, remote = free_ports(2)
        with EchoServer(service):  # -R needs a transport here: a direct connection
            key = rt.expose_port_to_runtime(service, remote, carrier="paramiko")
            try:
                echo_round_trip(remote, on=host)
            finally:
                rt.stop_process(key)
        status = _status(keepers)
        assert status["hosts"] == ["host-1"] and status["channels_open"] >= 1


def test_a_group_and_its_added_runtime_go_through_the_keeper(ssh_bed, keepers):
    logins = [_accepted(host) for host in ssh_bed.hosts]
    kwargs = ssh_bed.connection_kwargs
    with RuntimeGroup(hosts=["host-1"], connection_kwargs=kwargs, keeper=True) as group:
        group.add_runtime("host-2")
        for runtime in group.runtimes:
            assert _echo(runtime, runtime.host) == runtime.host
        assert _status(keepers)["hosts"] == ["host-1", "host-2"]
    with RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=kwargs, keeper=True) as again:
        assert [_echo(runtime, "again") for runtime in again.runtimes] == ["again", "again"]
    after = [_accepted(host) for host in ssh_bed.hosts]
    assert after[:2] == [logins[0] + 1, logins[1] + 1]  # one login each, by the keeper


_SCRIPT = """
from actorcluster import Runtime, RuntimeTask
with Runtime("host-1", connection_kwargs={"ssh_config_path": CONFIG}, keeper=True) as rt:
    task = RuntimeTask("t").run_command("echo from-a-script")
    rt.execute_task(task, execute_async=False)
    print("".join(task.execution_log).strip())
"""


def _script(config: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    code = f"CONFIG = {config!r}\n" + textwrap.dedent(_SCRIPT)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, timeout=90, check=False
    )


def test_a_second_script_makes_no_new_ssh_connection(ssh_bed, keepers):
    host = ssh_bed.hosts[0]
    first = _script(str(ssh_bed.ssh_config))
    assert (first.returncode, first.stdout) == (0, b"from-a-script\n"), first.stderr
    logins = _accepted(host)
    assert logins >= 1
    second = _script(str(ssh_bed.ssh_config))
    assert (second.returncode, second.stdout) == (0, b"from-a-script\n"), second.stderr
    assert _accepted(host) == logins  # the keeper's connection served it
    assert len(keeper_pids(keepers)) == 1


def test_keepers_turned_off_mean_a_direct_connection(ssh_bed, keepers, monkeypatch):
    monkeypatch.setenv("ACTORCLUSTER_KEEPER", "0")
    host = ssh_bed.hosts[0]
    logins = _accepted(host)
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs, keeper=True) as rt:
        assert _echo(rt, "direct") == "direct"
    assert _accepted(host) == logins + 1
    assert keeper_pids(keepers) == []


def _until(subscription, kind: str, timeout: float = 30.0) -> list[str]:
    """The kinds of the runtime events up to and including the first ``kind``."""
    seen = []
    for event in subscription.iter(timeout=timeout):
        if event.kind.startswith("runtime."):
            seen.append(event.kind)
        if event.kind == kind:
            return seen
    raise AssertionError(f"no {kind} within {timeout} s; saw {seen}")


def test_a_keeper_killed_under_a_runtime_the_runtime_comes_back(make_ssh_bed, keepers):
    bed = make_ssh_bed(1)
    rt = Runtime("host-1", connection_kwargs=bed.connection_kwargs, keeper=True)
    try:
        assert _echo(rt, "before") == "before"
        (pid,) = keeper_pids(keepers)
        running = RuntimeTask("slow").run_command("sleep 1; echo finished")
        rt.execute_task(running, execute_async=True)
        with subscribe() as subscription:
            os.kill(pid, signal.SIGKILL)
            seen = _until(subscription, "runtime.reattached")
        assert seen[0] == "runtime.lost", seen
        running.join(30)
        assert "".join(running.execution_log).strip() == "finished"  # it went on meanwhile
        assert _echo(rt, "after") == "after"
        (new_pid,) = keeper_pids(keepers)  # the runtime started a new one, and uses it
        assert new_pid != pid
        status = _status(keepers)
        assert status["hosts"] == ["host-1"] and status["channels_open"] >= 1
    finally:
        rt.cleanup()


def test_a_connection_dropped_under_the_keeper_the_runtime_reattaches(make_ssh_bed, keepers):
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs, keeper=True) as rt:
        assert _echo(rt, "before") == "before"
        running = RuntimeTask("slow").run_command("sleep 1; echo finished")
        rt.execute_task(running, execute_async=True)
        with subscribe() as subscription:
            assert host.kill_sshd_sessions()  # the keeper's connection drops
            seen = _until(subscription, "runtime.reattached")
        assert seen[0] == "runtime.lost", seen
        running.join(30)
        assert "".join(running.execution_log).strip() == "finished"
        assert _echo(rt, "after") == "after"
        assert _status(keepers)["hosts"] == ["host-1"]  # through the keeper's new connection


def test_a_second_local_user_cannot_use_the_channel_request(ssh_bed, keepers, other_user):  # noqa: F811
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs, keeper=True) as rt:
        assert _echo(rt, "mine") == "mine"
        (socket_name,) = [name for name in os.listdir(keepers) if name.endswith(".sock")]
        socket_path = os.path.join(keepers, socket_name)
        request = {
            "op": "exec",
            "key": socket_name[2:-5],
            "host": "host-1",
            "kwargs": ssh_bed.connection_kwargs,
            "conn": 1,
            "command": "echo stolen",
            "timeout": 10,
        }
        probe = _PROBE.replace('{"op": "status"}', repr(request))
        os.chmod(keepers, 0o755)
        os.chmod(socket_path, 0o777)
        try:
            said = probe_as(other_user, probe, socket_path)
        finally:
            os.chmod(socket_path, 0o600)
            os.chmod(keepers, 0o700)
        assert said.startswith("closed:"), said
        assert "exit" not in said
        assert _echo(rt, "still-mine") == "still-mine"


def _bad_settings(case: str, bed, tmp_path) -> tuple[str, dict]:
    """A host and settings that fail as ``case`` says."""
    if case == "unknown host":
        config = tmp_path / "ssh_config"
        config.write_text("Host nowhere\n  HostName no-such-host.invalid\n")
        return "nowhere", {"ssh_config_path": str(config)}
    if case == "host key refused":
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        return "host-1", {**bed.connection_kwargs, "known_hosts": str(empty)}
    stranger = tmp_path / "id_stranger"  # "authentication failed": a key sshd does not know
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        timeout=30,
    )
    config = tmp_path / "ssh_config"
    config.write_text(bed.ssh_config.read_text().replace(str(bed.client_key), str(stranger)))
    return "host-1", {"ssh_config_path": str(config)}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown host", UnknownHostError),
        ("host key refused", UnknownHostKeyError),
        ("authentication failed", AuthenticationError),
    ],
)
def test_bad_input_gives_the_same_typed_error_as_without_the_keeper(
    case, expected, ssh_bed, keepers, tmp_path
):
    host, kwargs = _bad_settings(case, ssh_bed, tmp_path)
    errors = []
    for keeper in (False, True):
        with pytest.raises(InvalidRuntimeError) as caught:
            Runtime(host, connection_kwargs=kwargs, keeper=keeper)
        errors.append(caught.value)
    direct, kept = errors
    assert isinstance(direct, expected), direct
    assert type(kept) is type(direct), (direct, kept)
    assert str(kept) == str(direct)
    assert len(keeper_pids(keepers)) == 1  # the keeper was asked, and answered so
