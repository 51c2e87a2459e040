"""Execution log files with retention: the folder stays within its caps (count, bytes,
age) however many tasks run, files from an earlier run are counted too, and
``execution_log_dir=None`` turns the files off."""

from __future__ import annotations

import os
import time

import pytest

from actorcluster import Runtime, RuntimeGroup, RuntimeTask
from actorcluster.errors import ConfigurationError
from actorcluster.runtimes import log_files
from actorcluster.runtimes.log_retention import DEFAULT_MAX_FILES, Retention, RetentionPolicy


def _files(root) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".log")
    ]


@pytest.fixture
def log_root(tmp_path):
    root = tmp_path / "logs"
    yield root
    log_files.configure_execution_logs()  # back to the defaults for later tests


@pytest.mark.slow
def test_a_hundred_thousand_tasks_with_output_keep_the_folder_within_its_default_cap(log_root):
    log_files.configure_execution_logs(str(log_root))
    for number in range(100_000):
        path = log_files.log_file_path(f"host-{number % 3}", "job")
        assert path is not None
        log_files.write_entry(path, 0, [f"output of job {number}\n"])
        if number % 10_000 == 0:
            assert log_files.flush(120)  # bounded queue, as tasks finishing would be
    assert log_files.flush(120)
    kept = _files(log_root)
    assert len(kept) == DEFAULT_MAX_FILES
    newest = sorted(kept, key=lambda p: int(p.rsplit("-", 1)[1].removesuffix(".log")))[-1]
    with open(newest) as file:
        assert file.read() == "[0] output of job 99999\n\n"


def test_the_byte_cap_removes_the_oldest_files_first(log_root):
    log_files.configure_execution_logs(str(log_root), max_files=None, max_bytes=10_000)
    paths = []
    for _ in range(50):
        path = log_files.log_file_path("host-1", "big")
        assert path is not None
        paths.append(path)
        log_files.write_entry(path, 0, ["x" * 995])
    assert log_files.flush(30)
    kept = _files(log_root)
    assert sum(os.path.getsize(p) for p in kept) <= 10_000
    assert sorted(kept) == sorted(paths[-len(kept) :])  # the newest stay
    assert len(kept) >= 9


def test_files_of_an_earlier_run_are_counted_and_the_oldest_go(log_root):
    old = log_root / "host-1"
    old.mkdir(parents=True, mode=0o700)
    log_root.chmod(0o700)
    for number in range(20):
        earlier = old / f"earlier_{number}.log"
        earlier.write_text("old\n")
        os.utime(earlier, (time.time() - 1000 + number, time.time() - 1000 + number))
    log_files.configure_execution_logs(str(log_root), max_files=10)
    path = log_files.log_file_path("host-1", "new")
    assert path is not None
    log_files.write_entry(path, 0, ["new\n"])
    assert log_files.flush(10)
    kept = sorted(os.path.basename(p) for p in _files(log_root))
    assert len(kept) == 10
    assert os.path.basename(path) in kept
    assert "earlier_19.log" in kept and "earlier_10.log" not in kept


def test_files_past_the_age_cap_go():
    now = [1000.0]
    retention = Retention("/nonexistent-root", RetentionPolicy(max_age=60.0), lambda: now[0])
    retention.created("/nonexistent-root/h/a.log")
    now[0] += 30
    retention.created("/nonexistent-root/h/b.log")
    now[0] += 45  # a is 75 s old, b 45 s
    retention.created("/nonexistent-root/h/c.log")
    assert retention.file_count == 2


def test_a_cap_that_is_not_a_positive_number_is_a_configuration_error():
    for bad in ({"max_files": 0}, {"max_bytes": -1}, {"max_age": "1d"}, {"max_files": True}):
        with pytest.raises(ConfigurationError, match="execution log max_"):
            log_files.configure_execution_logs(**bad)


def test_a_runtime_on_a_real_host_keeps_its_log_folder_within_the_cap(ssh_bed, log_root):
    log_files.configure_execution_logs(str(log_root), max_files=20)
    with RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=ssh_bed.connection_kwargs) as g:
        for number in range(30):
            g.execute_task(
                RuntimeTask(f"job{number}").run_command(f"echo {number}"), broadcast=True
            )
        g.join()
        assert log_files.flush(30)
    kept = _files(log_root)
    assert len(kept) == 20
    assert any(os.path.basename(path).startswith("job29") for path in kept)  # the newest


def test_execution_log_dir_none_turns_the_files_off(ssh_bed, log_root):
    log_files.configure_execution_logs(None)
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as runtime:
        task = runtime.execute_task(RuntimeTask("quiet").run_command("echo hi"), False)
        assert task.execution_log == ["hi\n"]
        assert task.execution_log_file_path is None
    assert not log_root.exists()
