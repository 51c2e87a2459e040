"""The engine over real SSH: the bed's sshd hosts, connection errors, many hosts."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from actorcluster import (
    AuthenticationError,
    ConfigurationError,
    ConnectionRefusedHostError,
    HostKeyChangedError,
    InvalidRuntimeError,
    RemoteFunctionError,
    Runtime,
    RuntimeTask,
    TaskExecutionError,
    UnknownHostError,
    UnknownHostKeyError,
)
from sshbed import write_ed25519_key


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


def test_commands_and_functions_run_on_the_host(runtime):
    task = RuntimeTask("basic").run_command("echo $((6 * 7))").run_function(lambda: "from host-1")
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log[0] == "42\n"
    assert list(task.function_returns) == ["from host-1"]


def test_commands_see_the_environment_the_users_shell_rc_exports(runtime):
    task = RuntimeTask("env").run_command('test -n "$PATH" && echo "$HOME"')
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log[0].strip() == str(Path.home())


def test_a_raising_function_over_ssh_keeps_type_and_traceback(runtime):
    def fail():
        raise KeyError("missing")

    with pytest.raises(RemoteFunctionError) as caught:
        runtime.execute_function(fail)
    assert caught.value.exc_type == "builtins.KeyError"
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_failing_command_over_ssh_names_the_host(runtime):
    with pytest.raises(TaskExecutionError) as caught:
        runtime.execute_task(RuntimeTask("x").run_command("exit 9"), execute_async=False)
    assert caught.value.host == "host-1"
    assert caught.value.exit_code == 9


def test_tasks_on_all_hosts_at_once_all_complete(ssh_bed):
    runtimes = [Runtime(h.name, connection_kwargs=ssh_bed.connection_kwargs) for h in ssh_bed.hosts]
    try:
        futures = [
            rt.execute_task(RuntimeTask(f"{rt.host}-{n}").run_command(f"echo {n}"))
            for n in range(30)
            for rt in runtimes
        ]
        results = [future.get(timeout=60) for future in futures]
        assert len(results) == 90
        assert all(task.execution_log == [f"{task.name.rsplit('-', 1)[1]}\n"] for task in results)
    finally:
        for rt in runtimes:
            rt.cleanup()


def test_runtimes_connect_in_parallel(ssh_bed):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runtimes = list(
            pool.map(
                lambda h: Runtime(h.name, connection_kwargs=ssh_bed.connection_kwargs),
                ssh_bed.hosts,
            )
        )
    try:
        assert [rt.echo("hi").strip() for rt in runtimes] == ["hi"] * 3
    finally:
        for rt in runtimes:
            rt.cleanup()


def test_an_unknown_host_is_a_typed_invalid_runtime_error(ssh_bed):
    with pytest.raises(UnknownHostError) as caught:
        Runtime("no-such-host.invalid", connection_kwargs=ssh_bed.connection_kwargs)
    assert isinstance(caught.value, InvalidRuntimeError)
    assert "no-such-host.invalid" in str(caught.value)


def test_a_refused_connection_is_a_typed_error(make_ssh_bed):
    bed = make_ssh_bed(1)
    bed.hosts[0].stop()
    with pytest.raises(ConnectionRefusedHostError, match="host-1"):
        Runtime("host-1", connection_kwargs=bed.connection_kwargs)


def _config_without_identity(bed, tmp_path: Path, known_hosts: Path) -> Path:
    host = bed.hosts[0]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host host-1\n  HostName {host.address}\n  Port {host.port}\n"
        f"  UserKnownHostsFile {known_hosts}\n"
    )
    return config


def test_a_key_the_host_does_not_know_is_an_authentication_error(ssh_bed, tmp_path):
    stranger = tmp_path / "stranger_key"
    write_ed25519_key(stranger, "stranger")
    config = _config_without_identity(ssh_bed, tmp_path, ssh_bed.known_hosts)
    kwargs = {
        "ssh_config_path": str(config),
        "connect_kwargs": {
            "key_filename": str(stranger),
            "look_for_keys": False,
            "allow_agent": False,
        },
    }
    with pytest.raises(AuthenticationError, match="host-1"):
        Runtime("host-1", connection_kwargs=kwargs)


def test_an_unknown_host_key_is_refused_unless_trusting_is_asked_for(ssh_bed, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    kwargs = {**ssh_bed.connection_kwargs, "known_hosts": str(empty)}
    with pytest.raises(UnknownHostKeyError, match="host-1"):
        Runtime("host-1", connection_kwargs=kwargs)
    with Runtime("host-1", connection_kwargs={**kwargs, "accept_new_host_keys": True}) as rt:
        assert rt.echo("trusted").strip() == "trusted"
    assert empty.read_text().strip()


def test_a_changed_host_key_is_refused_naming_the_known_hosts_file(make_ssh_bed):
    bed = make_ssh_bed(1)
    bed.hosts[0].replace_host_key()
    with pytest.raises(HostKeyChangedError) as caught:
        Runtime("host-1", connection_kwargs={**bed.connection_kwargs, "accept_new_host_keys": True})
    assert "host-1" in str(caught.value)
    assert "known_hosts" in str(caught.value)


def test_unknown_connection_kwargs_are_refused_by_name():
    with pytest.raises(ConfigurationError, match="no_such_option"):
        Runtime("localhost", connection_kwargs={"no_such_option": 1})


def test_a_host_behind_a_proxy_jump_is_a_runtime_like_any_other(ssh_bed, tmp_path):
    config = ssh_bed.write_jump_config(tmp_path / "ssh_config")
    jump_log = ssh_bed.hosts[0].log_path
    logins_before = jump_log.read_text().count("Accepted publickey")
    with Runtime("behind-the-jump", connection_kwargs={"ssh_config_path": str(config)}) as rt:
        task = RuntimeTask("jumped").run_command("echo $SSH_CONNECTION")
        rt.execute_task(task, execute_async=False)
        assert task.execution_log[0].split()[2] == ssh_bed.hosts[1].sshd_address  # host-2
        # ... reached through a login on host-1:
        assert jump_log.read_text().count("Accepted publickey") == logins_before + 1


def test_a_task_executes_standalone_on_a_fabric_style_connection(ssh_bed, tmp_path, monkeypatch):
    import types

    host = ssh_bed.hosts[0]
    config = tmp_path / "ssh_config"  # only where to find the host's key
    config.write_text(f"Host {host.address}\n    UserKnownHostsFile {ssh_bed.known_hosts}\n")
    monkeypatch.setenv("ACTORCLUSTER_SSH_CONFIG", str(config))
    connection = types.SimpleNamespace(  # what a fabric Connection carries
        host=host.address,
        user=ssh_bed.user,
        port=host.port,
        connect_kwargs={"key_filename": str(ssh_bed.client_key)},
    )
    task = RuntimeTask("fabric-style").run_command("echo via fabric")
    task.execute(connection)
    assert task.execution_log == ["via fabric\n"]
