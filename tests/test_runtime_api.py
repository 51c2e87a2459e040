"""The rest of the Runtime API (facts, filters, directories, transfers, ports) on real
sshd hosts, each member with its bad input."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from actorcluster import (
    FileTransferError,
    NoPortsLeftError,
    PathCreationError,
    Runtime,
    RuntimeTask,
    UsageError,
)

ODD_NAMES = ["with space", "quote'single", 'quote"double', "$(touch pwned)", "ünï ✓", "semi;colon"]


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


# --- working directory and environment --------------------------------------------


def test_the_temporary_working_dir_is_private_and_named_in_the_environment(runtime):
    assert oct(os.stat(runtime.working_dir).st_mode & 0o777) == "0o700"
    assert runtime.env_variables[Runtime.WORKING_DIR_ENV_VAR_NAME] == runtime.working_dir
    task = RuntimeTask("wd").run_command('printf %s "$WORKING_DIR"')
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == [runtime.working_dir]


def test_a_given_working_dir_is_created_with_parents_and_kept(ssh_bed, tmp_path):
    wanted = tmp_path / "deep" / "er" / "work dir"
    rt = Runtime("host-2", working_dir=str(wanted), connection_kwargs=ssh_bed.connection_kwargs)
    task = RuntimeTask("where").run_command("pwd")
    rt.execute_task(task, execute_async=False)
    assert task.execution_log == [f"{wanted}\n"]
    rt.cleanup()
    assert wanted.is_dir()


def test_a_working_dir_that_cannot_be_created_is_a_path_creation_error(ssh_bed, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PathCreationError, match="file"):
        Runtime(
            "host-2", working_dir=str(blocker / "sub"), connection_kwargs=ssh_bed.connection_kwargs
        )


def test_env_variables_reach_commands_and_functions_literally(runtime):
    value = "a 'b' \"c\" $(d) `e` ü"
    runtime.add_env_variables({"ODD_VALUE": value})
    task = (
        RuntimeTask("env")
        .run_command('printf %s "$ODD_VALUE"')
        .run_function(lambda: __import__("os").environ["ODD_VALUE"])
    )
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log[0] == value
    assert list(task.function_returns) == [value]


def test_add_env_variables_refuses_a_non_dict(runtime):
    with pytest.raises(UsageError):
        runtime.add_env_variables(["A=1"])  # type: ignore[arg-type]


# --- host facts ---------------------------------------------------------------------


def test_host_facts_are_read_once_and_plausible(runtime):
    info = runtime.info
    assert set(info) >= {"cpu_cores", "memory", "os", "python_version", "gpus"}
    assert 1 <= runtime.cpu_cores <= os.cpu_count()
    assert runtime.memory > 64 * 1024 * 1024
    assert runtime.memory_in_mb == runtime.memory // 1024 // 1024
    assert runtime.python_version.startswith("3.")
    assert runtime.gpu_count == len(runtime.gpus)
    assert runtime.host == "host-1"
    assert runtime.class_name == "Runtime"
    assert runtime.info is not runtime.info  # copies of one cached read


def test_print_info_prints_a_table(runtime, capsys):
    runtime.print_info()
    out = capsys.readouterr().out
    assert "host-1" in out and "cpu_cores" in out and " MB" in out


# --- filters --------------------------------------------------------------------------


def test_each_filter_can_pass_and_fail(runtime):
    assert runtime.check_filter()
    assert runtime.check_filter(min_memory=1)
    assert not runtime.check_filter(min_memory=10**9)
    assert runtime.check_filter(min_cpu_cores=1)
    assert not runtime.check_filter(min_cpu_cores=10**6)
    assert runtime.check_filter(gpu_required=runtime.gpu_count > 0)
    if runtime.gpu_count == 0:
        assert not runtime.check_filter(gpu_required=True)
    assert runtime.check_filter(installed_executables="sh")
    assert runtime.check_filter(installed_executables=["sh", "ls"])
    assert not runtime.check_filter(installed_executables=["sh", "no-such-executable-xyz"])
    assert runtime.check_filter(filter_commands="echo true")
    assert runtime.check_filter(
        filter_commands=['[ -n "$WORKING_DIR" ] && echo "true" || echo "false"']
    )
    assert not runtime.check_filter(filter_commands="echo false")
    assert not runtime.check_filter(filter_commands=["echo true", "echo nope"])


def test_filters_refuse_bad_types(runtime):
    with pytest.raises(UsageError):
        runtime.check_filter(installed_executables=3)  # type: ignore[arg-type]


# --- directories ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ODD_NAMES)
def test_directories_with_odd_names_are_created_and_deleted_literally(runtime, tmp_path, name):
    path = tmp_path / name / "child"
    runtime.create_dir(str(path))
    assert path.is_dir()
    assert runtime.delete_dir(str(tmp_path / name))
    assert not (tmp_path / name).exists()
    assert not (Path(runtime.working_dir) / "pwned").exists()


def test_create_dir_where_a_file_is_in_the_way_is_a_path_creation_error(runtime, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(PathCreationError, match="blocker"):
        runtime.create_dir(str(blocker / "x"))
    with pytest.raises(PathCreationError):
        runtime.create_dir("")


def test_delete_dir_of_a_missing_path_is_false(runtime, tmp_path):
    assert runtime.delete_dir(str(tmp_path / "never")) is False


def test_create_tempdir_makes_a_new_directory(runtime):
    first, second = runtime.create_tempdir(), runtime.create_tempdir()
    assert first != second and os.path.isdir(first) and os.path.isdir(second)
    runtime.delete_dir(first)
    runtime.delete_dir(second)


@pytest.mark.parametrize(
    ("message", "printed"),
    [
        ("hello", "hello"),
        ("two  spaces", "two spaces"),  # the shell's echo: words, as lazycluster's
        ("'it'\\''s'", "it's"),
        ('"quoted"', "quoted"),
        ("ü✓", "ü✓"),
    ],
)
def test_echo_is_the_shells_echo_of_the_message(runtime, message, printed):
    assert runtime.echo(message) == printed + "\n"


# --- transfers ------------------------------------------------------------------------


def _digest(path: Path) -> dict[str, str]:
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_a_file_goes_to_the_working_dir_and_comes_back(runtime, tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    runtime.send_file(str(source))
    assert _digest(Path(runtime.working_dir) / "data.bin") == _digest(source)
    back = tmp_path / "back.bin"
    runtime.get_file("data.bin", str(back))
    assert _digest(back) == _digest(source)


def test_a_folder_tree_round_trips_with_sub_folders(runtime, tmp_path):
    tree = tmp_path / "tree"
    for index in range(30):
        sub = tree / f"d{index % 4}" / ("deeper" if index % 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f {index}.txt").write_bytes(os.urandom(index * 100))
    (tree / "empty").mkdir()
    runtime.send_file(str(tree), "remote tree")
    remote = Path(runtime.working_dir) / "remote tree"
    assert _digest(remote) == _digest(tree)
    assert (remote / "empty").is_dir()
    back = tmp_path / "back"
    runtime.get_file("remote tree", str(back))
    assert _digest(back) == _digest(tree)


def test_a_file_sent_into_an_existing_folder_keeps_its_name(runtime, tmp_path):
    source = tmp_path / "named.txt"
    source.write_text("x")
    runtime.create_dir(f"{runtime.working_dir}/into")
    runtime.send_file(str(source), "into")
    assert (Path(runtime.working_dir) / "into" / "named.txt").read_text() == "x"


def test_file_modes_survive_the_trip(runtime, tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o750)
    runtime.send_file(str(script))
    task = RuntimeTask("exec").run_command("./run.sh")
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == ["ran\n"]


def test_an_asynchronous_transfer_hands_back_a_task_with_a_future(runtime, tmp_path):
    source = tmp_path / "async.txt"
    source.write_text("async")
    task = runtime.send_file(str(source), execute_async=True)
    assert task.future is not None
    task.future.get(timeout=30)
    assert (Path(runtime.working_dir) / "async.txt").read_text() == "async"


def test_fetching_a_missing_remote_file_is_a_transfer_error_naming_it(runtime, tmp_path):
    with pytest.raises(FileTransferError, match=r"nope\.txt"):
        runtime.get_file("nope.txt", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_sending_a_missing_local_file_is_a_transfer_error_naming_it(runtime, tmp_path):
    with pytest.raises(FileTransferError, match=r"missing\.txt") as caught:
        runtime.send_file(str(tmp_path / "missing.txt"))
    assert isinstance(caught.value, OSError)


def test_sending_a_file_where_a_folder_is_needed_fails_clearly(runtime, tmp_path):
    blocker = Path(runtime.working_dir) / "plainfile"
    blocker.write_text("")
    source = tmp_path / "tree"
    source.mkdir()
    (source / "a").write_text("a")
    with pytest.raises(FileTransferError):
        runtime.send_file(str(source), str(blocker))


def test_empty_paths_are_value_errors(runtime):
    with pytest.raises(ValueError, match="local_path must not be empty"):
        runtime.send_file("")
    with pytest.raises(ValueError, match="remote_path must not be empty"):
        runtime.get_file("")


# --- ports and validity ---------------------------------------------------------------


def test_a_busy_port_is_not_free_and_a_released_one_is():
    # The test's sockets are this machine's, so the runtime is too (the check is the
    # agent's, the same on every host; an isolated host's ports are its own).
    with Runtime("localhost") as runtime:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            assert not runtime.has_free_port(port)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                unused = probe.getsockname()[1]
            assert runtime.get_free_port([port, unused]) == unused
        assert runtime.has_free_port(port)


def test_get_free_port_with_no_free_port_is_no_ports_left():
    # The test's sockets are this machine's, so the runtime is too (the check is the
    # agent's, the same on every host; an isolated host's ports are its own).
    with Runtime("localhost") as runtime:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(NoPortsLeftError):
                runtime.get_free_port([port])
        with pytest.raises(NoPortsLeftError):
            runtime.get_free_port([])


@pytest.mark.parametrize("port", [0, -1, 65536, "eighty", "8 0", "", 1.5, True])
def test_ports_out_of_range_are_value_errors(runtime, port):
    with pytest.raises(ValueError, match=r"port must be an integer in 1\.\.65535"):
        runtime.has_free_port(port)
    with pytest.raises(ValueError, match=r"port must be an integer in 1\.\.65535"):
        runtime.get_free_port([port])


def test_a_connected_runtime_is_valid(runtime):
    assert runtime.is_valid_runtime()


def test_clear_tasks_forgets_logs_and_returns():
    with Runtime("localhost") as rt:
        rt.execute_function(lambda: 1)
        assert list(rt.function_returns) == [1]
        rt.clear_tasks()
        assert list(rt.function_returns) == []


def test_large_transfers_report_progress_up_to_the_total(runtime, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024))
    sent: list[tuple[int, int | None]] = []
    runtime.send_file(str(source), progress=lambda done, total: sent.append((done, total)))
    assert len(sent) >= 5
    assert sent[-1] == (source.stat().st_size, source.stat().st_size)
    assert [done for done, _ in sent] == sorted(done for done, _ in sent)
    received: list[int] = []
    runtime.get_file(
        "big.bin", str(tmp_path / "back.bin"), progress=lambda done, _: received.append(done)
    )
    assert received[-1] == source.stat().st_size
