"""Ending what the agent started: each command's process group, and with it the
processes that left the group but carry the agent's mark (:mod:`strays`).

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

from . import strays

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterable

__all__ = ["group_alive", "terminate_groups"]


def group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc``'s process group still has a member (zombies included)."""
    proc.poll()  # reap the leader, so it does not count once it has exited
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_groups() -> set[int] | None:
    """Process groups with a member that is not a zombie, from /proc (None without it).

    An orphaned zombie counts as a member for ``killpg`` until init reaps it, which
    can take a second; it needs no signal, so waiting for it would only waste time.
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    groups = set()
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as file:
                    fields = file.read().rpartition(b")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
                groups.add(int(fields[2]))
    return groups


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to ``proc``'s process group, ignoring a group already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _still_running(procs: list[subprocess.Popen[bytes]]) -> list[subprocess.Popen[bytes]]:
    """Those of ``procs`` whose group has a member that is not a zombie."""
    alive = [proc for proc in procs if group_alive(proc)]
    running = _running_groups() if alive else None
    return alive if running is None else [proc for proc in alive if proc.pid in running]


def terminate_groups(
    procs: Iterable[subprocess.Popen[bytes]], grace: float, mark: str | None = None
) -> None:
    """SIGTERM each process group (and, with ``mark``, each process outside them that
    carries it: :mod:`strays`), wait up to ``grace`` seconds, then SIGKILL the rest."""
    alive = _still_running(list(procs))
    for proc in alive:
        _signal_group(proc, signal.SIGTERM)
    escaped = strays.Strays(mark, {proc.pid for proc in alive})
    escaped.terminate()
    deadline = time.monotonic() + grace
    while (alive or escaped.running()) and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = _still_running(alive)
    for proc in alive:
        _signal_group(proc, signal.SIGKILL)
    escaped.kill()
