"""A failed connect or a failed close of the library's Dask client leaves no thread and
no fd behind.

A plain ``distributed.Client`` that cannot connect keeps its ``IO loop`` thread and
three fds for the life of the process; the chaos suite found one left after each
readiness probe of a restarting scheduler (``LocalMasterLauncher.check_ready``) and
each client made while the scheduler was down (issue 26: fds/threads back at baseline
after a run). A ``close()`` that times out (the scheduler stopped reading, the client's
stream to it full) left the same, and its socket to the scheduler."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

pytest.importorskip("distributed")

from actorcluster.cluster.dask_client import connect

pytestmark = pytest.mark.timeout(60)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _refused_port() -> int:
    with socket.socket() as probe:  # bound, never listening: a connect is refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _loop_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "IO loop"]


def test_a_refused_connect_leaves_no_loop_thread_and_no_fd() -> None:
    loops, fds = len(_loop_threads()), _fds()
    port = _refused_port()
    for _ in range(3):
        with pytest.raises(OSError, match="connect"):
            connect(f"tcp://127.0.0.1:{port}", 3, set_as_default=False, security=None)
    deadline = time.monotonic() + 10  # other tests' threads may end meanwhile: at most
    while (len(_loop_threads()), _fds()) > (loops, fds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_loop_threads()) <= loops, f"left: {_loop_threads()}"
    assert _fds() <= fds


def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the scheduler never listened"
            time.sleep(0.1)


def test_a_close_that_times_out_leaves_no_loop_thread_and_no_fd() -> None:
    port = _refused_port()
    where = ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", *where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, 30)
        loops, fds = len(_loop_threads()), _fds()
        client = connect(f"tcp://127.0.0.1:{port}", 10, set_as_default=False, security=None)
        os.kill(scheduler.pid, signal.SIGSTOP)  # it reads nothing more: the stream fills
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Sending large graph": that is the point
            client.submit(len, b"x" * (64 << 20), pure=False)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.close(timeout=2)
        assert time.monotonic() - started < 15  # bounded: the timeout, then the abort
        assert len(_loop_threads()) <= loops, f"left: {_loop_threads()}"
        assert _fds() <= fds, os.listdir("/proc/self/fd")
        client.close(timeout=2)  # closed now: a second close (and __del__) does nothing
    finally:
        scheduler.kill()
        os.kill(scheduler.pid, signal.SIGCONT)
        scheduler.wait(timeout=30)
