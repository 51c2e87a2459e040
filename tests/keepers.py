"""Private connection keepers for tests: a folder of the test's own, every keeper in it
stopped (and, if it will not stop, killed) when the test ends."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import tempfile
from typing import TYPE_CHECKING

import cli_runner
from actorcluster.cli.keeper_client import ask
from proctree import wait_gone

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["calls_served", "keeper_pids", "private_keepers", "stop_keepers"]


def keeper_pids(folder: str) -> list[int]:
    """The pids of the keepers answering in ``folder``."""
    pids = []
    for path in sorted(glob.glob(os.path.join(folder, "k-*.sock"))):
        answer = ask(path, {"op": "status"}, timeout=5)
        if answer is not None:
            pids.append(int(answer["pid"]))
    return pids


def calls_served(folder: str) -> int:
    """How many calls the keepers answering in ``folder`` served, all together."""
    total = 0
    for path in sorted(glob.glob(os.path.join(folder, "k-*.sock"))):
        answer = ask(path, {"op": "status"}, timeout=5)
        if answer is not None:
            total += int(answer["calls_served"])
    return total


def stop_keepers(folder: str) -> None:
    """Stop every keeper in ``folder``: asked first, then SIGKILL, bounded."""
    pids = keeper_pids(folder)
    for path in glob.glob(os.path.join(folder, "k-*.sock")):
        ask(path, {"op": "stop"}, timeout=5)
    for pid in wait_gone(pids, 20):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def private_keepers(idle: float = 120) -> Iterator[str]:
    """Calls of ``cli_runner`` use keepers in a new private folder for the block (short
    path: a socket's path has at most 107 bytes); stopped and removed after it."""
    folder = tempfile.mkdtemp(prefix="ack-", dir="/tmp")  # 0700
    before = dict(cli_runner.KEEPER_ENV)
    cli_runner.KEEPER_ENV.clear()
    cli_runner.KEEPER_ENV.update(
        {"ACTORCLUSTER_KEEPER_DIR": folder, "ACTORCLUSTER_KEEPER_IDLE": str(idle)}
    )
    try:
        yield folder
    finally:
        cli_runner.KEEPER_ENV.clear()
        cli_runner.KEEPER_ENV.update(before)
        stop_keepers(folder)
        shutil.rmtree(folder, ignore_errors=True)
