"""The engine end to end on the local runtime (the agent as a local subprocess)."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from pathlib import Path

import pytest

from actorcluster import (
    InvalidRuntimeError,
    RemoteFunctionError,
    Runtime,
    RuntimeTask,
    TaskCancelledError,
    TaskExecutionError,
    UsageError,
)
from waiting import wait_until


@pytest.fixture(scope="module")
def runtime():
    rt = Runtime("localhost")
    yield rt
    rt.cleanup()


def test_a_command_runs_and_its_output_is_the_log_entry(runtime):
    task = RuntimeTask("echo").run_command("echo out; echo err >&2")
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == ["out\nerr\n"]


def test_commands_run_in_the_working_directory_with_its_variable(runtime):
    task = RuntimeTask("pwd").run_command('pwd; echo "$WORKING_DIR"')
    runtime.execute_task(task, execute_async=False)
    cwd, variable = task.execution_log[0].split()
    assert cwd == variable == runtime.working_dir


def test_a_non_zero_exit_is_a_task_error_naming_step_command_code_and_output(runtime):
    task = (
        RuntimeTask("fails")
        .run_command("true")
        .run_command("echo boom; exit 3")
        .run_command("echo never")
    )
    with pytest.raises(TaskExecutionError) as caught:
        runtime.execute_task(task, execute_async=False)
    error = caught.value
    assert (error.task_name, error.step, error.exit_code) == ("fails", 1, 3)
    assert error.command == "echo boom; exit 3"
    assert "boom" in error.output
    assert len(task.execution_log) == 2


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "with space",
        "quote ' and \"",
        "$(touch /tmp/actorcluster-pwned)",
        "`id`",
        "ünïcödé ✓",
        "a\\nb",
    ],
)
def test_environment_values_arrive_literally(runtime, value):
    task = RuntimeTask("env").run_command('printf %s "$ODD"')
    task.env_variables = {"ODD": value}
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == [value]
    assert not Path("/tmp/actorcluster-pwned").exists()


def test_command_strings_reach_the_shell_unchanged(runtime):
    task = RuntimeTask("quoting").run_command("printf '%s|' 'a b' \"c'd\" $((1+2)) ü")
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == ["a b|c'd|3|ü|"]


def _double(x: int) -> int:
    return x * 2


class _Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    def add(self, n: int) -> int:
        return self.start + n


def _adder(base: int):
    return lambda n: base + n


@pytest.mark.parametrize(
    ("function", "kwargs", "expected"),
    [
        (_double, {"x": 21}, 42),
        (lambda: "lambda", {}, "lambda"),
        (functools.partial(_double, 5), {}, 10),
        (_Counter(40).add, {"n": 2}, 42),
        (_adder(100), {"n": 1}, 101),
    ],
    ids=["function", "lambda", "partial", "bound-method", "closure"],
)
def test_any_callable_runs_remotely_and_returns_its_value(runtime, function, kwargs, expected):
    task = runtime.execute_function(function, **kwargs)
    assert list(task.function_returns) == [expected]


def test_a_raising_function_carries_the_remote_type_and_traceback(runtime):
    def divide():
        return 1 / 0

    with pytest.raises(RemoteFunctionError) as caught:
        runtime.execute_function(divide)
    assert caught.value.exc_type == "builtins.ZeroDivisionError"
    assert "divide" in caught.value.remote_traceback
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_an_unpicklable_function_is_refused_before_anything_runs():
    lock = threading.Lock()
    with pytest.raises(UsageError, match="cannot pickle"):
        RuntimeTask("bad").run_function(lambda: lock)


def test_what_a_function_prints_is_its_log_entry(runtime):
    def talk() -> int:
        print("said on the host")
        return 7

    task = RuntimeTask("talk").run_function(talk)
    runtime.execute_task(task, execute_async=False)
    assert task.execution_log == ["said on the host\n"]
    assert list(task.function_returns) == [7]


def test_function_returns_keep_task_order_across_tasks():
    with Runtime("localhost") as rt:
        for n in range(3):
            rt.execute_task(
                RuntimeTask(f"t{n}").run_function(lambda n=n: n).run_function(lambda n=n: -n),
                execute_async=False,
            )
        assert list(rt.function_returns) == [0, 0, 1, -1, 2, -2]


def test_async_tasks_return_futures_that_resolve_to_the_task(runtime):
    futures = [
        runtime.execute_task(RuntimeTask(f"a{n}").run_command(f"echo {n}")) for n in range(20)
    ]
    done = [future.get(timeout=30) for future in futures]
    assert [task.execution_log for task in done] == [[f"{n}\n"] for n in range(20)]


def test_futures_can_be_awaited_without_blocking_the_event_loop(runtime):
    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        task = await runtime.execute_task(RuntimeTask("slow").run_command("sleep 0.5; echo done"))
        stop.set()
        await ticking
        return task, ticks

    task, ticks = asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert task.execution_log == ["done\n"]
    assert ticks >= 10


def test_a_failed_async_task_fails_its_future(runtime):
    future = runtime.execute_task(RuntimeTask("async-fail").run_command("exit 4"))
    with pytest.raises(TaskExecutionError) as caught:
        future.get(timeout=30)
    assert caught.value.exit_code == 4


def test_the_execution_log_is_written_to_a_file_per_task(runtime):
    task = RuntimeTask("logged").run_command("echo first").run_command("echo second")
    runtime.execute_task(task, execute_async=False)
    text = Path(task.execution_log_file_path).read_text()
    assert "[0] first" in text and "[1] second" in text
    assert runtime.execution_log("logged") == ["first\n", "second\n"]


def test_execution_log_of_an_unknown_task_is_a_value_error(runtime):
    with pytest.raises(ValueError, match="no task named"):
        runtime.execution_log("never-ran")


def test_debug_prints_the_hosts_output_live(runtime, capsys):
    runtime.execute_task(
        RuntimeTask("dbg").run_command("echo live"), execute_async=False, debug=True
    )
    assert "live" in capsys.readouterr().out


def test_stopping_a_task_kills_its_remote_process_group(runtime, tmp_path):
    marker = tmp_path / "child.pid"
    task = RuntimeTask("long").run_command(f"sleep 60 & echo $! > {marker}; wait")
    future = runtime.execute_task(task)
    key = "localhost::task::long"
    assert runtime.is_runtime_task_process(key)
    wait_until(lambda: marker.exists() and marker.read_text().strip(), what="the child started")
    runtime.stop_process(key)
    with pytest.raises(TaskCancelledError):
        future.get(timeout=10)
    child = int(marker.read_text())
    wait_until(lambda: not _alive(child), what="the child was killed")


def test_join_waits_for_tasks_except_omitted_ones():
    with Runtime("localhost") as rt:
        waited = rt.execute_task(RuntimeTask("w").run_command("sleep 0.3"))
        omitted = rt.execute_task(RuntimeTask("o").run_command("sleep 30"), omit_on_join=True)
        rt.join()
        assert waited.done()
        assert not omitted.done()


def test_bad_task_input_is_a_typed_error(runtime):
    with pytest.raises(UsageError):
        RuntimeTask("x").run_command("")
    with pytest.raises(UsageError):
        RuntimeTask("x").send_file("")
    with pytest.raises(UsageError):
        RuntimeTask("x").get_file("  ")
    with pytest.raises(UsageError):
        RuntimeTask("x").run_function(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="name must be a string"):
        RuntimeTask(42)  # type: ignore[arg-type]


def test_cleanup_removes_the_temporary_working_dir_and_is_idempotent():
    rt = Runtime("localhost")
    working_dir = rt.working_dir
    assert os.path.isdir(working_dir)
    assert oct(os.stat(working_dir).st_mode & 0o777) == "0o700"
    rt.cleanup()
    rt.cleanup()
    assert not os.path.exists(working_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # reaped meanwhile
        return False
    return " Z " not in stat


def test_a_task_executes_standalone_on_a_host_name_or_a_runtime(runtime):
    task = RuntimeTask("standalone").run_command("echo alone")
    task.execute("localhost")
    assert task.execution_log == ["alone\n"]
    task.execute(runtime)
    assert task.execution_log == ["alone\n"]
    with pytest.raises(UsageError):
        task.execute(42)


def test_interpreter_exit_without_cleanup_still_removes_the_working_dir(tmp_path):
    import subprocess
    import sys

    script = (
        "from actorcluster import Runtime, RuntimeTask\n"
        "rt = Runtime('localhost')\n"
        "rt.execute_task(RuntimeTask('bg').run_command('sleep 120'))\n"
        "print(rt.working_dir, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    working_dir = done.stdout.strip().splitlines()[-1]
    wait_until(lambda: not os.path.exists(working_dir), what="the working dir was removed")


def test_a_silent_task_gets_its_log_file_when_its_path_is_asked_for(runtime):
    task = RuntimeTask("silent").run_command("true").run_command("true")
    runtime.execute_task(task, execute_async=False)
    path = task._log_file_path
    assert path is not None and not os.path.exists(path)  # no file for nothing said
    assert Path(str(task.execution_log_file_path)).read_text() == "[0] \n[1] \n"


def test_a_log_file_holds_the_silent_steps_before_one_that_printed(runtime):
    task = RuntimeTask("late").run_command("true").run_command("echo late").run_command(":")
    runtime.execute_task(task, execute_async=False)
    assert Path(str(task.execution_log_file_path)).read_text() == "[0] \n[1] late\n\n[2] \n"


def test_a_log_file_that_cannot_be_written_never_fails_the_task(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("ACTORCLUSTER_LOG_DIR", str(blocker))
    with Runtime("localhost") as rt:
        task = RuntimeTask("unlogged").run_command("echo still runs")
        rt.execute_task(task, execute_async=False)
        assert task.execution_log == ["still runs\n"]
        assert not os.path.exists(str(task.execution_log_file_path))


def test_shell_noise_before_the_agent_starts_is_skipped(tmp_path):
    noisy = tmp_path / "noisy-python"
    noisy.write_text(
        f'#!/bin/sh\necho "Welcome! conda activate base"\nexec {sys.executable} "$@"\n'
    )
    noisy.chmod(0o755)
    with Runtime("localhost", connection_kwargs={"python": str(noisy)}) as rt:
        assert rt.echo("clean").strip() == "clean"


def test_an_agent_that_never_starts_reports_what_the_host_printed(tmp_path):
    broken = tmp_path / "broken-python"
    broken.write_text('#!/bin/sh\necho "Python 2.7.18 is all we have" >&2\nexit 3\n')
    broken.chmod(0o755)
    with pytest.raises(InvalidRuntimeError, match=r"Python 2\.7\.18 is all we have"):
        Runtime("localhost", connection_kwargs={"python": str(broken)})


def test_a_request_the_agent_does_not_answer_in_time_is_a_typed_timeout(runtime, tmp_path):
    from actorcluster import RequestTimeoutError

    marker = tmp_path / "slow.pid"
    agent = runtime._handle.context.agent()
    # Long enough for the command to start on a loaded machine: it writes its pid first.
    with pytest.raises(RequestTimeoutError, match=r"within 2\.5 s") as caught:
        agent.run(f"echo $$ > {marker}.new; mv {marker}.new {marker}; exec sleep 30").result(
            timeout=2.5
        )
    assert isinstance(caught.value, TimeoutError)
    wait_until(marker.exists, what="the command had started")
    wait_until(
        lambda: not _alive(int(marker.read_text())), what="the timed-out command was cancelled"
    )


def test_setting_the_working_dir_creates_it_and_moves_every_step_there(tmp_path):
    target = tmp_path / "new home" / "deep"
    with Runtime("localhost") as rt:
        old = rt.working_dir
        rt.working_dir = str(target)
        assert target.is_dir()
        assert rt.env_variables[Runtime.WORKING_DIR_ENV_VAR_NAME] == str(target)
        task = RuntimeTask("where").run_command('pwd; printf %s "$WORKING_DIR"')
        rt.execute_task(task, execute_async=False)
        assert task.execution_log == [f"{target}\n{target}"]
    assert target.is_dir()  # a given working dir is kept
    assert not os.path.exists(old)  # the temporary one is gone


def test_task_processes_are_listed_counted_and_logged(capsys):
    with Runtime("localhost") as rt:
        running = rt.execute_task(RuntimeTask("runs").run_command("sleep 30"))
        rt.execute_task(RuntimeTask("quick").run_command("echo printed"), execute_async=False)
        assert rt.alive_task_process_count == 1
        assert rt.alive_process_count == 1
        assert {p.key for p in rt.task_processes} == {"localhost::task::runs"}
        assert set(rt.get_processes()) == {"localhost::task::runs"}
        rt.print_log()
        assert "printed" in capsys.readouterr().out
        with pytest.raises(ValueError, match="unknown process key"):
            rt.get_process("localhost::task::nope")
        with pytest.raises(ValueError, match="unknown process key"):
            rt.stop_process("nope")
        rt.stop_process("localhost::task::runs")
        with pytest.raises(TaskCancelledError):
            running.get(timeout=10)
        assert rt.alive_task_process_count == 0
