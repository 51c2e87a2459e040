"""Scripts from lazycluster's README and docs, and lazycluster's own tests, with only the
import changed (``lazycluster`` -> ``actorcluster``), on a real host and on localhost.

Each script runs as its own ``python3`` process, as a user runs it: the bed's
ssh_config stands in for ``~/.ssh/config`` (``$ACTORCLUSTER_SSH_CONFIG``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actorcluster import Runtime, RuntimeTask
from actorcluster.ssh import CONFIG_ENV_VAR

SRC = str(Path(__file__).resolve().parents[1] / "src")

README_LOWER_LEVEL_EXAMPLE = """
from actorcluster import RuntimeTask, Runtime

# Define a Python function which will be executed remotely
def hello(name:str):
    return 'Hello ' + name + '!'

# Compose a `RuntimeTask`
task = RuntimeTask('my-first_task').run_command('echo Hello World!') \\
                                   .run_function(hello, name='World')

# Actually execute it remotely in a `Runtime`
task = Runtime('host-1').execute_task(task, execute_async=False)

# The stdout from from the executing `Runtime` can be accessed
# via the execution log of the `RuntimeTask`
task.print_log()

# Print the return of the `hello()` call
generator = task.function_returns
print(next(generator))
"""
"""lazycluster's README, "Usage example lower-level API", verbatim but the import."""

DOCS_RUNTIME_EXAMPLE = """
from actorcluster import Runtime, RuntimeTask

my_task = RuntimeTask('my-task').run_command('echo $WORKING_DIR')
# Execute a RuntimeTask synchronously
Runtime('host-1').execute_task(my_task, execute_async=False)
print(my_task.execution_log[0].strip())

rt = Runtime('host-1')
rt.env_variables = {'foo': 'bar'}
print(rt.echo('$foo'), end='')
print(rt.check_filter(installed_executables='sh'))
filter_str = '[ ! -z "$foo" ] && echo "true" || echo "false"'
print(rt.check_filter(filter_commands=filter_str))
"""
"""The examples of lazycluster's runtimes docs (its check_filter typo fixed) and README
("Create Runtimes"), import aside."""


def _run_script(script: str, ssh_config: Path, host: str = "host-1") -> str:
    env = {**os.environ, CONFIG_ENV_VAR: str(ssh_config), "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", script.replace("'host-1'", repr(host))],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("host", ["host-1", "localhost"])
def test_the_readmes_lower_level_example_runs_with_only_the_import_changed(ssh_bed, host):
    printed = _run_script(README_LOWER_LEVEL_EXAMPLE, ssh_bed.ssh_config, host)
    # the log: the command's output, then the function's step (it printed nothing)
    assert printed == "Log of Task my-first_task:\n0: Hello World!\n\n1: \nHello World!\n"


def test_the_docs_runtime_examples_run_with_only_the_import_changed(ssh_bed):
    lines = _run_script(DOCS_RUNTIME_EXAMPLE, ssh_bed.ssh_config).splitlines()
    assert lines[0].startswith("/") and lines[1:] == ["bar", "True", "True"]


# --- lazycluster's own tests (tests/test_integration.py, tests/test_runtime_task.py) -----


@pytest.fixture
def lazycluster_hosts(ssh_bed, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(ssh_bed.ssh_config))
    return [host.name for host in ssh_bed.hosts]


def test_lazyclusters_test_echo(lazycluster_hosts):
    runtime_name = lazycluster_hosts[len(lazycluster_hosts) - 1]
    rt = Runtime(runtime_name)
    try:
        msg = f"Hello Runtime {runtime_name}"
        assert rt.echo(msg).rstrip("\n") == msg
    finally:
        rt.cleanup()


def test_lazyclusters_test_working(lazycluster_hosts):
    runtime_name = lazycluster_hosts[0]
    exp_working_dir = "/etc"
    rt = Runtime(runtime_name, working_dir=exp_working_dir)
    try:
        act_working_dir = rt.echo("${PWD}").rstrip("\n")
        assert exp_working_dir == act_working_dir

        task = RuntimeTask("get-working-dir").run_command("echo ${PWD}")
        rt.execute_task(task, execute_async=False)
        assert exp_working_dir == rt.execution_log(task.name)[0].rstrip("\n").rstrip("\r")
    finally:
        rt.cleanup()


def test_lazyclusters_test_task_creation_and_bad_calls():
    task = RuntimeTask("test-task")
    assert task.name == "test-task"
    assert task.execution_log_file_path is None
    assert task.execution_log == []
    unnamed = RuntimeTask()
    assert isinstance(unnamed.name, str)
    assert unnamed.name != ""
    with pytest.raises(ValueError, match="command"):
        RuntimeTask("bad-call-run-command-task").run_command("")
    with pytest.raises(ValueError, match="local_path"):
        RuntimeTask("x").send_file("")
    with pytest.raises(ValueError, match="remote_path"):
        RuntimeTask("x").get_file("")
