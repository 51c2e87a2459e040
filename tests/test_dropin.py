"""lazycluster scripts run unchanged but for the import: each numbered point of issue 13
(the deviations a ported script hit), run as lazycluster documents it, on a real host.

Paths (point 9) are in test_dropin_paths.py; whole scripts from lazycluster's README
and its own tests in test_dropin_scripts.py.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import threading
from pathlib import Path

import paramiko
import pytest
import structlog
from structlog.testing import capture_logs

from actorcluster import (
    AuthenticationError,
    ConfigurationError,
    PathCreationError,
    PortInUseError,
    RevokedHostKeyError,
    Runtime,
    RuntimeTask,
    TaskExecutionError,
    UnknownHostError,
    UnknownHostKeyError,
    UsageError,
)
from actorcluster.ssh import CONFIG_ENV_VAR
from actorcluster.ssh.hostmatch import hash_host_name
from test_tunnels_support import free_ports, read_all
from waiting import wait_until


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.fixture
def captured_logs():
    """structlog's capture_logs, leaving structlog as unconfigured as it found it (after
    capture_logs, ``structlog.is_configured()`` stays true: the library would then
    print every event, debug ones too, to stdout for the rest of the run)."""
    was_configured = structlog.is_configured()
    with capture_logs() as logs:
        yield logs
    if not was_configured:
        structlog.reset_defaults()


@pytest.fixture
def bare_hosts(ssh_bed, monkeypatch):
    """``Runtime("host-1")`` with no connection_kwargs finds the bed, as lazycluster's
    ``Runtime`` found hosts in ``~/.ssh/config``."""
    monkeypatch.setenv(CONFIG_ENV_VAR, str(ssh_bed.ssh_config))
    return ssh_bed


class Gate:
    """A shell command that waits until the test opens the gate: a task that provably
    still runs, without timing."""

    def __init__(self, folder: Path) -> None:
        self.flag = folder / "gate-open"
        self.command = f"while [ ! -e {self.flag} ]; do sleep 0.02; done"

    def open(self) -> None:
        self.flag.touch()


def _host_section(ssh_bed, name: str, **settings: object) -> str:
    host = ssh_bed.hosts[0]
    lines = [f"Host {name}", f"    HostName {host.address}", f"    Port {host.port}"]
    lines += [f"    {key} {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


# --- 1. connection_kwargs are paramiko's connect() arguments ---------------------------


def test_connection_kwargs_are_paramikos_connect_arguments_as_lazycluster_passed_them(
    ssh_bed, tmp_path, monkeypatch
):
    config = tmp_path / "ssh_config"  # no IdentityFile: the key comes from connection_kwargs
    config.write_text(_host_section(ssh_bed, "keyless", UserKnownHostsFile=ssh_bed.known_hosts))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(config))
    no_defaults = {"look_for_keys": False, "allow_agent": False}
    with pytest.raises(AuthenticationError):
        Runtime("keyless", connection_kwargs={**no_defaults, "timeout": 10})
    key = str(ssh_bed.client_key)
    with Runtime("keyless", connection_kwargs={**no_defaults, "key_filename": key}) as rt:
        assert rt.echo("by key file").strip() == "by key file"
    pkey = paramiko.Ed25519Key.from_private_key_file(key)
    with Runtime("keyless", connection_kwargs={**no_defaults, "pkey": pkey, "timeout": 10}) as rt:
        assert rt.echo("by key object").strip() == "by key object"
    fabric_style = {"user": ssh_bed.user, "connect_kwargs": {**no_defaults, "key_filename": key}}
    with Runtime("keyless", connection_kwargs=fabric_style) as rt:
        assert rt.echo("fabric keys still work").strip() == "fabric keys still work"


def test_connection_kwargs_neither_lazycluster_nor_fabric_knows_are_rejected_by_name():
    with pytest.raises(ConfigurationError, match=r"keyfile=.*unknown key"):
        Runtime("host-1", connection_kwargs={"keyfile": "x"})
    with pytest.raises(ConfigurationError, match=r"sock=.*gateway"):
        Runtime("host-1", connection_kwargs={"sock": object()})
    with pytest.raises(ConfigurationError, match=r"username=.*conflicts with user"):
        Runtime("host-1", connection_kwargs={"user": "a", "username": "b"})
    with pytest.raises(ConfigurationError, match="password=<redacted>") as info:
        Runtime("host-1", connection_kwargs={"password": 1234567})
    assert "1234567" not in str(info.value)


# --- 2. host keys ------------------------------------------------------------------------


def test_an_unknown_host_key_says_the_three_ways_out_in_one_message(ssh_bed, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(
        _host_section(ssh_bed, "new-host", UserKnownHostsFile=empty)
        + f"    IdentityFile {ssh_bed.client_key}\n    User {ssh_bed.user}\n"
    )
    host = ssh_bed.hosts[0]
    with pytest.raises(UnknownHostKeyError) as info:
        Runtime("new-host", connection_kwargs={"ssh_config_path": str(config)})
    message = str(info.value)
    assert f"ssh-keyscan -p {host.port} {host.address} >> {empty}" in message
    assert "StrictHostKeyChecking accept-new" in message
    assert "accept_new_host_keys=True" in message


def test_comments_blank_lines_and_hashed_entries_in_known_hosts_are_read_quietly(
    ssh_bed, tmp_path, captured_logs
):
    host = ssh_bed.hosts[0]
    name, key = host.known_hosts_line.split(" ", 1)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "# written by hand\n\n   \n\t# indented comment\n"
        f"{hash_host_name(name)} {key}\n"
        "# trailing comment\n"
    )
    config = tmp_path / "ssh_config"
    config.write_text(
        _host_section(ssh_bed, "hashed", UserKnownHostsFile=known_hosts)
        + f"    IdentityFile {ssh_bed.client_key}\n    User {ssh_bed.user}\n"
    )
    with Runtime("hashed", connection_kwargs={"ssh_config_path": str(config)}) as rt:
        assert rt.echo("hashed entry trusted").strip() == "hashed entry trusted"
    with Runtime("hashed", connection_kwargs={"ssh_config_path": str(config)}) as rt:
        assert rt.is_valid_runtime()
    assert any(e["event"] == "ssh.connect.succeeded" for e in captured_logs)  # it captures
    assert [e for e in captured_logs if e["event"].startswith("ssh.hostkey.bad")] == []
    known_hosts.write_text(f"@revoked * {key}\n" + known_hosts.read_text())
    with pytest.raises(RevokedHostKeyError):
        Runtime("hashed", connection_kwargs={"ssh_config_path": str(config)})


# --- 3. function_returns waits ---------------------------------------------------------


def _open_once_started(task: RuntimeTask, gate: Gate) -> threading.Thread:
    """Open ``gate`` from another thread once ``task`` runs its first step."""

    def open_when_running() -> None:
        try:
            wait_until(lambda: len(task.execution_log) >= 1, what="the gated step started")
        finally:
            gate.open()

    opener = threading.Thread(target=open_when_running)
    opener.start()
    return opener


def test_function_returns_waits_for_a_task_still_running(runtime, tmp_path):
    gate = Gate(tmp_path)
    task = RuntimeTask("returns-later").run_command(gate.command).run_function(lambda: 42)
    runtime.execute_task(task)
    opener = _open_once_started(task, gate)
    assert list(task.function_returns) == [42]  # read while it ran: waited for it
    opener.join(10)

    runtime.clear_tasks()
    gate = Gate(tmp_path / "again")
    gate.flag.parent.mkdir()
    done = RuntimeTask("returned").run_function(lambda: 1)
    runtime.execute_task(done, execute_async=False)
    later = RuntimeTask("returns-later-too").run_command(gate.command).run_function(lambda: 2)
    runtime.execute_task(later)
    opener = _open_once_started(later, gate)
    assert list(runtime.function_returns) == [1, 2]  # the runtime's waits as well
    opener.join(10)


# --- 4. echo is the shell's echo -------------------------------------------------------


def test_echo_expands_as_the_shell_does_like_lazyclusters_own_test(ssh_bed):
    # lazycluster's tests/test_integration.py TestRuntime.test_working, import aside
    rt = Runtime("host-1", working_dir="/etc", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        assert rt.echo("${PWD}").rstrip("\n") == "/etc"
        assert rt.echo("$WORKING_DIR").rstrip("\n") == "/etc"
        rt.add_env_variables({"GREETING": "hello"})
        assert rt.echo("$GREETING world").rstrip("\n") == "hello world"
    finally:
        rt.cleanup()


# --- 5. task.process -------------------------------------------------------------------


def test_task_process_is_a_process_face_or_none_as_documented(runtime, tmp_path):
    gate = Gate(tmp_path)
    task = RuntimeTask("as-a-process").run_command(gate.command)
    assert task.process is None  # not yet executed
    future = runtime.execute_task(task)
    process = task.process
    assert process is not None
    assert process is runtime.get_process(f"host-1::task::{task.name}")
    assert process.is_alive() and process.exitcode is None and process.pid is None
    assert task.future is future
    gate.open()
    process.join(30)
    assert not process.is_alive() and process.exitcode == 0
    runtime.execute_task(task, execute_async=False)
    assert task.process is None  # synchronously executed

    stopped = RuntimeTask("terminated").run_command("sleep 60")
    runtime.execute_task(stopped)
    assert stopped.process is not None
    stopped.process.terminate()
    stopped.process.join(30)
    assert stopped.process.exitcode == -15


# --- 6. lazycluster's attributes on our errors ------------------------------------------


def test_task_execution_error_has_lazyclusters_attributes(runtime):
    task = RuntimeTask("fails-at-1").run_command("true").run_command("echo out; exit 3")
    with pytest.raises(TaskExecutionError) as info:
        runtime.execute_task(task, execute_async=False)
    error = info.value
    assert error.task is task and error.task_step_index == 1 == error.step
    assert error.msg == str(error) and "fails-at-1" in error.msg
    assert error.predecessor_excp is None
    future = runtime.execute_task(RuntimeTask("fails-async").run_command("exit 4"))
    with pytest.raises(TaskExecutionError) as info:
        future.get(timeout=30)
    assert info.value.task.name == "fails-async"

    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(TaskExecutionError) as info:  # a RemoteFunctionError
        runtime.execute_function(boom)
    assert info.value.task.name == "execute-function-boom" and info.value.task_step_index == 0


def test_other_errors_have_lazyclusters_attributes(runtime):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            runtime.expose_port_from_runtime(free_ports(1)[0], port)
    assert info.value.runtime is runtime and info.value.group is None
    assert info.value.port == port
    with pytest.raises(PathCreationError) as created:
        runtime.create_dir("/proc/no/such/dir")
    assert created.value.path == "/proc/no/such/dir" and created.value.host == "host-1"


# --- 7. RuntimeTask.execute(connection) standalone -------------------------------------


def test_a_standalone_execution_runs_in_the_login_home_and_leaves_its_files(bare_hosts, tmp_path):
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    local = tmp_path / f"dropin-standalone-{os.getpid()}.txt"
    local.write_text("left behind\n")
    left = home / local.name
    try:
        task = RuntimeTask("standalone").send_file(str(local)).run_command("pwd")
        assert task.execute("host-1") is task
        assert task.execution_log[1].strip() == str(home)
        assert left.read_text() == "left behind\n"
    finally:
        left.unlink(missing_ok=True)


def test_a_standalone_execution_on_a_fabric_connection_keeps_its_ssh_config_alias(ssh_bed):
    fabric = pytest.importorskip("fabric")
    config = fabric.Config(runtime_ssh_path=str(ssh_bed.ssh_config))
    connection = fabric.Connection("host-1", config=config)
    assert connection.host != "host-1"  # fabric resolved the HostName: not in known_hosts
    task = RuntimeTask("on-fabric").run_command("echo via fabric")
    task.execute(connection)
    assert task.execution_log == ["via fabric\n"]


def test_a_standalone_execution_on_an_unknown_host_is_a_value_error():
    task = RuntimeTask("nowhere").run_command("true")
    with pytest.raises(ValueError, match=r"no-such-host\.invalid") as info:
        task.execute("no-such-host.invalid")
    assert isinstance(info.value, UnknownHostError)


# --- 8. localhost exposing a port to itself --------------------------------------------


def test_localhost_exposing_a_port_to_itself_is_a_no_op_returning_empty():
    with Runtime("localhost") as rt, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert rt.expose_port_to_runtime(port) == ""
        assert rt.expose_port_from_runtime(port) == ""
        assert rt.expose_port_to_runtime(port, port) == ""
        assert rt.get_processes() == {}


# --- 10. generated task names, 11. task.name assignable --------------------------------


def test_generated_task_names_are_lazyclusters_so_lookups_by_name_work(runtime, tmp_path):
    def add(a: int, b: int) -> int:
        return a + b

    first = runtime.execute_function(add, a=1, b=2)
    assert first.name == "execute-function-add"
    second = runtime.execute_function(add, a=2, b=2)
    assert runtime.execution_log("execute-function-add") is second.execution_log  # latest
    local = tmp_path / "named.txt"
    local.write_text("x")
    sent = runtime.send_file(str(local))
    assert sent.name == f"send-file-{local}-to-host-1"
    assert runtime.execution_log(sent.name) is sent.execution_log
    fetched = runtime.get_file("named.txt", str(tmp_path / "back.txt"))
    assert fetched.name == "get-file-named.txt-from-host-1"
    assert isinstance(RuntimeTask().name, str) and RuntimeTask().name  # lazycluster: str(id())


def test_a_task_name_is_assignable_before_execution(runtime, tmp_path):
    task = RuntimeTask("first-name").run_command("echo renamed")
    task.name = "second-name"
    runtime.execute_task(task, execute_async=False)
    assert runtime.execution_log("second-name") == ["renamed\n"]
    gate = Gate(tmp_path)
    running = RuntimeTask("running").run_command(gate.command)
    runtime.execute_task(running)
    try:
        with pytest.raises(UsageError, match="is running"):
            running.name = "other"
    finally:
        gate.open()
        running.process.join(30)  # type: ignore[union-attr]
    running.name = "other"
    assert running.name == "other"


# --- 12. ports ---------------------------------------------------------------------------


def test_a_port_in_time_wait_is_free_and_string_ports_are_taken():
    # The test's sockets are this machine's, so the runtime is too (the check is the
    # agent's, the same on every host).
    with Runtime("localhost") as runtime:
        _check_time_wait_and_bound_ports(runtime)


def _check_time_wait_and_bound_ports(runtime: Runtime) -> None:
    with socket.socket() as listener:  # a server, as servers (sshd, ours) bind
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server closes first: its end lingers in TIME_WAIT
        client.close()
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):  # not by anyone...
        plain.bind(("0.0.0.0", port))
    assert runtime.has_free_port(port)  # ... but the next server can listen there
    assert runtime.has_free_port(str(port))
    assert runtime.get_free_port([str(port)]) == port
    with socket.socket() as bound:  # bound, not listening, not shared: a bind would fail
        bound.bind(("127.0.0.1", 0))
        assert not runtime.has_free_port(bound.getsockname()[1])


def test_a_port_is_exposed_again_right_after_stop_process(runtime, ssh_bed):
    host = ssh_bed.hosts[0]  # the runtime's: a client of the exposed port is there
    service, remote = free_ports(2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", service))
        server.listen()

        def serve_once() -> None:
            connection, _ = server.accept()
            connection.sendall(b"hi")
            connection.close()  # closes first: sshd's end on the remote port lingers

        for _ in range(2):
            key = runtime.expose_port_to_runtime(service, remote)
            serving = threading.Thread(target=serve_once)
            serving.start()
            assert read_all(remote, on=host) == b"hi"
            serving.join(10)
            runtime.stop_process(key)


# --- 13. the smaller ones ----------------------------------------------------------------


def test_join_does_not_wait_for_omit_on_join_tasks(runtime, tmp_path):
    gate = Gate(tmp_path)
    task = RuntimeTask("omitted").run_command(gate.command)
    runtime.execute_task(task, omit_on_join=True)
    try:
        runtime.join()
        task.join()
        assert task.process is not None and task.process.is_alive()
    finally:
        gate.open()
    task.process.join(30)  # a process's join does wait
    assert not task.process.is_alive()


def test_the_execution_log_is_the_live_list(runtime, tmp_path):
    gate = Gate(tmp_path)
    task = RuntimeTask("live-log").run_command("echo one").run_command(gate.command)
    runtime.execute_task(task)
    log = runtime.execution_log("live-log")
    wait_until(lambda: len(log) == 2, what="the second step started")
    gate.open()
    task.join()
    assert log is task.execution_log and log == ["one\n", ""]


def test_print_log_prints_as_lazycluster_does(runtime, capsys):
    runtime.clear_tasks()
    task = RuntimeTask("printed").run_command("echo a").run_command("echo b")
    runtime.execute_task(task, execute_async=False)
    empty = RuntimeTask("nothing")
    empty.print_log()
    runtime.print_log()
    printed = capsys.readouterr().out.splitlines(keepends=True)
    printed = [line for line in printed if not re.match(r"\d{4}-\d\d-\d\d ", line)]  # logs
    assert "".join(printed) == (
        "The log of task nothing is empty!\nLog of Task printed:\n0: a\n\n1: b\n\n"
    )


def test_info_has_the_host_and_gpus_are_names(runtime):
    info = runtime.info
    assert info["host"] == "host-1"
    assert set(info) >= {"os", "cpu_cores", "memory", "python_version", "gpus", "host"}
    assert all(isinstance(name, str) for name in runtime.gpus)
    assert [gpu["name"] for gpu in runtime.gpu_details] == runtime.gpus == info["gpus"]


def test_gpus_are_their_names_and_the_details_have_a_name_of_their_own(tmp_path, monkeypatch):
    rows = "0, NVIDIA H200, 143771, 550.54.15, GPU-a\n1, NVIDIA H200, 143771, 550.54.15, GPU-b\n"
    smi = tmp_path / "nvidia-smi"  # what nvidia-smi prints on a two-GPU host
    smi.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with Runtime("localhost") as rt:  # its agent has this PATH
        assert rt.gpus == ["NVIDIA H200", "NVIDIA H200"] == rt.info["gpus"]
        assert rt.gpu_count == 2 and rt.check_filter(gpu_required=True)
        assert [gpu["uuid"] for gpu in rt.gpu_details] == ["GPU-a", "GPU-b"]
        assert rt.gpu_details[0]["memory"] == 143771 * 2**20
        rt.print_info()  # the table shows the names


def test_a_task_without_steps_runs_and_does_nothing(runtime):
    task = RuntimeTask("no-steps")
    assert runtime.execute_task(task, execute_async=False) is task
    assert task.execution_log == [] and list(task.function_returns) == []


def test_clear_tasks_forgets_running_tasks_processes_too(runtime, tmp_path):
    gate = Gate(tmp_path)
    task = RuntimeTask("cleared").run_command(gate.command)
    runtime.execute_task(task)
    try:
        runtime.clear_tasks()
        assert runtime.task_processes == []
        assert task.process is not None and task.process.is_alive()  # still running
    finally:
        gate.open()
    task.process.join(30)


def test_task_env_variables_show_the_working_dir_after_execution(runtime):
    task = RuntimeTask("env").run_command("true")
    task.env_variables = {"MINE": "1"}
    runtime.execute_task(task, execute_async=False)
    assert task.env_variables["WORKING_DIR"] == runtime.working_dir
    assert task.env_variables["MINE"] == "1"


# --- 14. lazycluster's module paths -----------------------------------------------------


def test_lazyclusters_module_paths_work_under_actorcluster():
    from actorcluster.cluster.exceptions import MasterStartError
    from actorcluster.exceptions import (
        InvalidRuntimeError,
        LazyclusterError,
        NoPortsLeftError,
        NoRuntimesDetectedError,
        PathCreationError,
        PortInUseError,
        TaskExecutionError,
    )
    from actorcluster.runtimes import Runtime as RuntimeThere
    from actorcluster.runtimes import RuntimeTask as RuntimeTaskThere

    assert (RuntimeThere, RuntimeTaskThere) == (Runtime, RuntimeTask)
    for error in (
        InvalidRuntimeError,
        NoPortsLeftError,
        NoRuntimesDetectedError,
        PathCreationError,
        PortInUseError,
        TaskExecutionError,
        MasterStartError,
    ):
        assert issubclass(error, LazyclusterError)
    master = MasterStartError("host-1", 8786, "scheduler exited")
    assert (master.host, master.port, master.cause) == ("host-1", 8786, "scheduler exited")
    assert InvalidRuntimeError("host-9").host == "host-9"
    cause = OSError("no ssh config")
    assert NoRuntimesDetectedError(cause).predecessor_excp is cause
