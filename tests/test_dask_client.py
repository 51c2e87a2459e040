"""A failed connect of the library's Dask client leaves no thread and no fd behind.

A plain ``distributed.Client`` that cannot connect keeps its ``IO loop`` thread and
three fds for the life of the process; the chaos suite found one left after each
readiness probe of a restarting scheduler (``LocalMasterLauncher.check_ready``) and
each client made while the scheduler was down (issue 26: fds/threads back at baseline
after a run)."""

from __future__ import annotations

import os
import socket
import threading
import time

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
