"""A host whose python3 is another minor version than the client's: commands, files,
supervised processes and tunnels work there; functions fail at once with a typed error;
an interpreter of the client's version on the host (a pyenv install here) is found and
used by itself.

The host is a bed sshd whose sessions get ``PATH`` and ``HOME`` of the test's own
(an sshd ``ForceCommand``): a folder with every program of ``/usr/bin`` but its Pythons, and
``python3`` the older CPython; a home without (or, later, with) a pyenv install of the
client's version.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import sys
from typing import TYPE_CHECKING

import pytest

from actorcluster import PythonVersionMismatchError, Runtime, RuntimeTask
from cli_runner import cli
from test_tunnels_support import EchoServer, echo_round_trip, free_ports
from waiting import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from sshbed import SshBed

pytestmark = pytest.mark.timeout(120)

CLIENT = platform.python_version()
CLIENT_MINOR = ".".join(CLIENT.split(".")[:2])


def _other_pythons() -> list[str]:
    """Older CPythons on this machine (pyenv's), one per minor version, 3.8 on."""
    found = []
    for minor in ("3.8", "3.9", "3.10"):
        paths = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python3")))
        if paths and minor != CLIENT_MINOR:
            found.append(paths[-1])
    return found


OTHER = _other_pythons()


def _bin_without_pythons(folder: Path, python3: str) -> Path:
    """``folder`` with a link to every program of /usr/bin but its Pythons, and
    ``python3`` linked to ``python3``."""
    folder.mkdir()
    for name in os.listdir("/usr/bin"):
        if not name.startswith(("python", "pip", "pydoc", "2to3", "idle")):
            os.symlink(os.path.join("/usr/bin", name), folder / name)
    os.symlink(python3, folder / "python3")
    return folder


@pytest.fixture(params=OTHER[:2] or [None], ids=lambda p: p and p.split("/")[-3])
def old_host(request, make_ssh_bed, tmp_path) -> tuple[SshBed, Path, str]:
    """A bed of one host whose only python3 is ``request.param``; its home folder."""
    python3 = request.param
    if python3 is None:
        pytest.skip("no CPython of another minor version on this machine (pyenv)")
    bed = make_ssh_bed(1)
    home = tmp_path / "home"
    home.mkdir()
    path = _bin_without_pythons(tmp_path / "bin", python3)
    # sshd takes the first SetEnv only (the bed's); a forced command sets them instead,
    # after the real home's shell rc ran.
    bed.hosts[0].configure(
        f"ForceCommand exec /usr/bin/env PATH={path} HOME={home} "
        '/bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
    )
    return bed, home, python3


def test_an_older_python3_runs_commands_files_and_tunnels_but_no_functions(old_host, tmp_path):
    bed, home, python3 = old_host
    runtime = Runtime("host-1", connection_kwargs=bed.connection_kwargs)
    try:
        host_minor = ".".join(runtime.python_version.split(".")[:2])
        assert host_minor != CLIENT_MINOR
        assert python3.split("/")[-3].startswith(host_minor)

        task = RuntimeTask("cmd").run_command("echo $((6 * 7))")
        runtime.execute_task(task, execute_async=False)
        assert task.execution_log[0] == "42\n"

        source = tmp_path / "data.bin"
        source.write_bytes(os.urandom(300_000))
        runtime.send_file(str(source), "sent.bin")
        back = tmp_path / "back.bin"
        runtime.get_file("sent.bin", str(back))
        assert back.read_bytes() == source.read_bytes()

        made = runtime.create_dir("$HOME/made-by-variable")  # $HOME read without a function
        assert made == str(home / "made-by-variable") and os.path.isdir(made)

        process = runtime.supervise("echo supervised; exec sleep 3011", name="old-python")
        assert process.wait_running(20)
        wait_until(lambda: "supervised" in process.output(), 20, "the process printed")
        process.stop()
        assert process.status == "stopped"

        service, local = free_ports(2)
        with EchoServer(service, on=bed.hosts[0]):  # on the host's own loopback
            key = runtime.expose_port_from_runtime(service, local)
            try:
                echo_round_trip(local)
            finally:
                runtime.stop_process(key)

        with pytest.raises(PythonVersionMismatchError) as caught:
            runtime.execute_function(lambda: 1)
        message = str(caught.value)
        assert "host-1" in message
        assert runtime.python_version in message
        assert CLIENT in message
        assert f'connection_kwargs={{"python": "/path/to/python{CLIENT_MINOR}"}}' in message
    finally:
        runtime.cleanup()


def test_an_interpreter_of_the_clients_version_in_pyenv_is_picked_up(old_host):
    bed, home, _ = old_host
    pyenv = home / ".pyenv" / "versions" / f"{CLIENT_MINOR}.99" / "bin"
    pyenv.mkdir(parents=True)
    os.symlink(os.path.realpath(sys.executable), pyenv / f"python{CLIENT_MINOR}")
    runtime = Runtime("host-1", connection_kwargs=bed.connection_kwargs)
    try:
        assert runtime.python_version == CLIENT
        assert list(runtime.execute_function(lambda: 6 * 7).function_returns) == [42]
    finally:
        runtime.cleanup()


def test_the_python_connection_kwarg_names_the_interpreter_and_it_re_attaches(old_host):
    bed, _, python3 = old_host
    fast = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0, "session_grace": 15.0}
    kwargs = {**bed.connection_kwargs, **fast, "python": python3}
    runtime = Runtime("host-1", connection_kwargs=kwargs)
    try:
        assert runtime.python_version.startswith(python3.split("/")[-3][:3])
        with pytest.raises(PythonVersionMismatchError):
            runtime.execute_function(lambda: 1)
        agent = runtime.handle.client().hello["pid"]
        assert bed.hosts[0].kill_sshd_sessions()  # the attach stub runs on that Python too
        wait_until(lambda: runtime._handle.context.reattaches >= 1, 20, "re-attached")
        task = RuntimeTask("after").run_command("echo back")
        runtime.execute_task(task, execute_async=False)
        assert task.execution_log == ["back\n"]
        assert runtime.handle.client().hello["pid"] == agent
    finally:
        runtime.cleanup()


def test_hosts_shows_the_hosts_python_and_that_functions_cannot_run(old_host):
    bed, _, python3 = old_host
    result = cli("hosts", "--json", "host-1", ssh_config=bed.ssh_config)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["python_version"].startswith(python3.split("/")[-3][:3])
    assert record["functions"] is False
    table = cli("hosts", "host-1", ssh_config=bed.ssh_config).stdout.decode()
    assert f"no (needs python{CLIENT_MINOR})" in table
