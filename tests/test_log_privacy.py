"""Execution logs are private: a second local user (made for the test) can neither read
another user's logs nor redirect them through links planted at the predictable paths."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime, RuntimeTask
from actorcluster.runtimes import log_files
from logcapture import captured_logs

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = "API_TOKEN=s3cr3t-" + os.urandom(4).hex()


@pytest.fixture
def other_user() -> Iterator[str]:
    """A second local user, removed after the test (needs root and useradd)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("needs root, useradd and runuser to make a second user")
    name = f"acl{os.urandom(3).hex()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def _as(user: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", *command], capture_output=True, text=True, check=False
    )


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable sticky folder, like /tmp (not /tmp itself: others use it)."""
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="acl-shared-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run_secret_task() -> RuntimeTask:
    task = RuntimeTask("secret").run_command(f"echo {SECRET}")
    with Runtime("localhost") as rt:
        rt.execute_task(task, execute_async=False)
    assert task.execution_log == [f"{SECRET}\n"]
    assert log_files.flush()
    return task


def test_another_user_cannot_read_the_logs(
    other_user: str, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = shared_dir / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv(log_files.LOG_DIR_ENV_VAR, raising=False)
    path = _run_secret_task().execution_log_file_path
    assert path is not None
    assert path.startswith(str(state))
    with open(path) as log:
        assert SECRET in log.read()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    host_folder = os.path.dirname(path)
    for folder in (host_folder, os.path.dirname(host_folder)):  # .../execution_log/localhost
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
    for command in (["cat", path], ["ls", os.path.dirname(path)]):
        attempt = _as(other_user, *command)
        assert attempt.returncode != 0
        assert "Permission denied" in attempt.stderr
        assert SECRET not in attempt.stdout


def _next_number() -> int:
    """The number the next log file name gets (read without taking it)."""
    match = re.fullmatch(r"count\((\d+)\)", repr(log_files._numbers))
    assert match is not None
    return int(match.group(1))


def test_another_user_cannot_redirect_the_logs_through_planted_links(
    other_user: str, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(shared_dir))  # the shared temp folder
    monkeypatch.setenv("XDG_STATE_HOME", "not-absolute")  # so logs fall back to it
    monkeypatch.delenv(log_files.LOG_DIR_ENV_VAR, raising=False)
    folder = shared_dir / f"actorcluster-{os.getuid()}" / "execution_log" / "localhost"
    assert log_files.log_file_path("localhost", "x").startswith(str(folder))
    stolen = shared_dir / "stolen"
    # The other user gets there first: the folders, and a link at every name the
    # victim's next log files may get in the next minute, to a file of theirs.
    assert _as(other_user, "mkdir", "-p", "-m", "777", str(folder)).returncode == 0
    assert _as(other_user, "sh", "-c", f"umask 0; : > {stolen}").returncode == 0
    now, first = time.time(), _next_number()
    names = [
        folder / f"secret_{time.strftime('%Y%m%d-%H%M%S', time.localtime(now + s))}-{n}.log"
        for s, n in itertools.product(range(60), range(first, first + 5))
    ]
    script = "".join(f"ln -s {stolen} {name}\n" for name in names)
    assert _as(other_user, "sh", "-c", script).returncode == 0
    with captured_logs() as logs:
        task = _run_secret_task()
    assert task.execution_log_file_path in {str(name) for name in names}  # guessed right
    assert stolen.read_text() == ""
    assert all(name.is_symlink() and os.readlink(name) == str(stolen) for name in names)
    refused = [entry for entry in logs if entry["event"] == "task.log_file_failed"]
    assert refused
    assert "belongs to uid" in refused[0]["error"]


def test_a_link_at_the_log_path_inside_our_own_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(log_files.LOG_DIR_ENV_VAR, str(tmp_path / "logs"))
    target = tmp_path / "target"
    target.write_text("")
    folder = tmp_path / "logs" / "localhost"
    folder.mkdir(parents=True, mode=0o700)
    (tmp_path / "logs").chmod(0o700)
    now, first = time.time(), _next_number()
    for seconds, number in itertools.product(range(60), range(first, first + 5)):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + seconds))
        with contextlib.suppress(FileExistsError):
            (folder / f"secret_{stamp}-{number}.log").symlink_to(target)
    with captured_logs() as logs:
        task = _run_secret_task()
    assert os.path.islink(str(task.execution_log_file_path))
    assert target.read_text() == ""
    assert any(entry["event"] == "task.log_file_failed" for entry in logs)
