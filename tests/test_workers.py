"""``Workers``, the one way the client starts threads: order, limit, idle exit, close
joins; no thread is started anywhere else in the client's sources; an idle runtime
holds at most 2 threads."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from actorcluster import Runtime
from actorcluster._workers import Workers

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

ROOT = Path(__file__).resolve().parents[1] / "src" / "actorcluster"
WAIT = 10.0


def _until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Whether ``condition()`` held within ``timeout`` (looked at every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_jobs_run_in_order_on_at_most_limit_threads() -> None:
    pool = Workers("test-order", limit=1, linger=5.0)
    gate, seen = threading.Event(), []
    pool.submit(gate.wait, WAIT)
    for number in range(5):
        pool.submit(seen.append, number)
    assert pool.threads == 1
    gate.set()
    assert pool.close(WAIT)
    assert seen == [0, 1, 2, 3, 4]


def test_a_busy_pool_grows_to_its_limit_and_no_further() -> None:
    pool = Workers("test-limit", limit=3, linger=5.0)
    gate = threading.Event()
    started = threading.Semaphore(0)

    def block() -> None:
        started.release()
        gate.wait(WAIT)

    for _ in range(6):
        pool.submit(block)
    assert all(started.acquire(timeout=WAIT) for _ in range(3))
    assert pool.threads == 3
    assert not started.acquire(timeout=0.05)
    gate.set()
    assert pool.close(WAIT)


def test_an_idle_thread_takes_the_next_job_then_ends_after_linger() -> None:
    pool = Workers("test-idle", linger=0.2)
    names: list[str] = []
    done = threading.Event()
    pool.submit(lambda: names.append(threading.current_thread().name))
    assert _until(lambda: not pool.busy)
    pool.submit(lambda: (names.append(threading.current_thread().name), done.set()))
    assert done.wait(WAIT)
    assert names == ["test-idle", "test-idle"]
    assert pool.threads == 1
    assert _until(lambda: pool.threads == 0), "an idle thread did not end after linger"


def test_start_names_the_thread_and_join_waits_for_it() -> None:
    pool = Workers("test-start", linger=0.0)
    gate = threading.Event()
    seen: list[str] = []
    job = pool.start(
        lambda: (seen.append(threading.current_thread().name), gate.wait(WAIT)), name="job-1"
    )
    assert job.is_alive()
    job.join(0.01)
    assert job.is_alive()
    gate.set()
    assert job.wait(WAIT)
    assert not job.is_alive()
    assert seen == ["job-1"]
    assert pool.close(WAIT)


def test_a_job_knows_whether_it_is_the_calling_thread() -> None:
    """``Job.is_current`` stands for ``thread is threading.current_thread()``: a job
    that would wait for itself does not."""
    pool = Workers("test-current", linger=0.0)
    gate, started = threading.Event(), threading.Event()
    seen: list[tuple[bool, bool]] = []

    def look() -> None:
        started.wait(WAIT)  # the job is known once start returned
        seen.append((job.is_current(), job.ident is not None))
        gate.wait(WAIT)

    job = pool.start(look)
    started.set()
    assert _until(lambda: bool(seen))
    assert seen == [(True, True)]
    assert not job.is_current()
    gate.set()
    assert job.wait(WAIT)
    assert job.ident is None
    assert pool.close(WAIT)


def test_close_joins_the_threads_and_refuses_new_jobs() -> None:
    pool = Workers("test-close", linger=60.0)
    gate = threading.Event()
    pool.submit(gate.wait, WAIT)
    assert not pool.close(0.05), "close returned while a job still ran"
    gate.set()
    assert pool.close(WAIT)
    assert pool.threads == 0
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(print)


def test_a_failed_job_is_logged_and_the_thread_lives_on() -> None:
    pool = Workers("test-fail", limit=1, linger=5.0, listed=False)
    done = threading.Event()
    with capture_logs() as logs:
        pool.submit(lambda: 1 / 0)
        pool.submit(done.set)
        assert done.wait(WAIT)
    assert pool.close(WAIT)
    assert [entry["event"] for entry in logs] == ["workers.job_failed"]
    assert logs[0]["workers"] == "test-fail"


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        Workers("test-bad", limit=0)


# --- no thread starts outside Workers -----------------------------------------------

STARTERS = {"Thread", "ThreadPoolExecutor", "start_new_thread", "Timer"}
"""Calls (or base classes) that start a thread."""

ALLOWED = {
    "_workers.py": "the primitive itself",
}
"""Client modules that may still start a thread themselves, each with its reason."""


def _thread_starts(path: Path) -> list[str]:
    """``line: call`` for each thread started in ``path`` (or Thread subclassed)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Call):
            targets = [node.func]
        elif isinstance(node, ast.ClassDef):
            targets = list(node.bases)
        for target in targets:
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in STARTERS:
                found.append(f"{node.lineno}: {ast.unparse(target)}")
    return found


CLIENT = sorted(
    path
    for path in ROOT.rglob("*.py")
    if not path.relative_to(ROOT).as_posix().startswith("remote/agent/")
)


def test_the_client_starts_threads_only_through_workers() -> None:
    """The shipped agent (``remote/agent/``, standard library only) is not the client."""
    outside = {
        path.relative_to(ROOT).as_posix(): starts
        for path in CLIENT
        if (starts := _thread_starts(path))
    }
    unexplained = {where: starts for where, starts in outside.items() if where not in ALLOWED}
    assert not unexplained, f"start these threads with actorcluster._workers: {unexplained}"
    stale = sorted(set(ALLOWED) - set(outside) - {"_workers.py"})
    assert not stale, f"no thread is started here any more: drop from ALLOWED: {stale}"
    sites = sum(len(starts) for where, starts in outside.items() if where != "_workers.py")
    assert sites <= 5, f"{sites} thread starts outside Workers (17 before it): {outside}"


def test_the_scan_sees_a_thread_start(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "import threading, _thread, concurrent.futures as cf\n"
        "threading.Thread(target=print).start()\n"
        "_thread.start_new_thread(print, ())\n"
        "cf.ThreadPoolExecutor(2)\n"
        "class T(threading.Thread): pass\n"
    )
    assert len(_thread_starts(source)) == 4


# --- threads per idle runtime ---------------------------------------------------------

SHARED = ("actorcluster-actor", "actorcluster-timers", "actorcluster-modules")


def _shared_pools_idle() -> bool:
    """Whether the process-wide pools (actor workers, timers, module lookups, one-off
    jobs) hold no thread now."""
    names = [thread.name for thread in threading.enumerate()]
    return not any(name.startswith(SHARED) or name == "actorcluster" for name in names)


def test_an_idle_runtime_holds_at_most_two_threads(ssh_bed: SshBed) -> None:
    """Its SSH transport's thread and its agent session's reader; the shared pools (actor
    workers, module lookups, one-off jobs) end once idle, and one timer thread serves
    every runtime's heartbeats. The bed's hosts are named host-1, host-2, ..."""
    hosts = [f"host-{i}" for i in range(1, 4)]
    _until(_shared_pools_idle, timeout=15.0)  # earlier tests' shared threads end
    before = threading.active_count()
    runtimes = [Runtime(host, connection_kwargs=ssh_bed.connection_kwargs) for host in hosts]
    try:
        for runtime in runtimes:
            assert runtime.echo("up").strip() == "up"

        def idle() -> bool:
            return (threading.active_count() - before) <= 2 * len(runtimes) + 1

        assert _until(idle, timeout=15.0), (
            f"{threading.active_count() - before} threads for {len(runtimes)} idle runtimes:"
            f" {sorted(thread.name for thread in threading.enumerate())}"
        )
    finally:
        for runtime in runtimes:
            runtime.cleanup()
