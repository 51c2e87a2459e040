"""Process trees, read from /proc: find, freeze, kill and wait for them (Linux only).

Used by the sshd test bed to take a host down the way a crash would, and by tests that
check nothing was left behind. No ``pgrep``: ``/proc`` is read directly.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ProcessTreeError",
    "alive",
    "cmdline",
    "descendants",
    "environ",
    "kill_tree",
    "matching",
    "wait_gone",
]


class ProcessTreeError(RuntimeError):
    """Processes did not stop or die in time (the message names them)."""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def cmdline(pid: int) -> bytes:
    """The raw command line (NUL-separated), empty for a gone process or a zombie."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def environ(pid: int) -> dict[str, str]:
    """The environment a process started with (empty when gone or not ours)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (os.fsdecode(item).partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


def matching(fragment: bytes) -> list[int]:
    """Live processes whose command line contains ``fragment``."""
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and fragment in cmdline(int(entry.name))
    ]


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain leads to ``pid``, found by scanning /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        kids = children.get(stack.pop(), [])
        found += kids
        stack += kids
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_stopped(pids: list[int], deadline: float) -> None:
    """Wait until each process is stopped (state T) or gone.

    No event reports another process's stop, so this polls; it takes microseconds.
    """
    while any((s := _proc_stat(p)) is not None and s[0] not in "TtZ" for p in pids):
        if time.monotonic() > deadline:
            raise ProcessTreeError(f"processes did not stop on SIGSTOP: {pids}")
        time.sleep(0.001)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait (on pidfds) until every process has exited; return those still alive."""
    fds: list[int] = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds.append(os.pidfd_open(pid))
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        pending = set(fds)
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                pending.discard(fd)
                poller.unregister(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return [pid for pid in pids if alive(pid)]


def kill_tree(
    root: int,
    *,
    kill_root: bool,
    timeout: float = 5.0,
    before_kill: Callable[[list[int]], object] | None = None,
) -> list[int]:
    """SIGKILL every descendant of ``root`` (and ``root`` itself if ``kill_root``).

    The tree is frozen with SIGSTOP first, root down, until a scan finds no new process,
    so nothing forks a child that escapes; then everything frozen is killed (also when
    freezing failed). ``before_kill`` may look at the frozen descendants first. A root
    that is kept gets SIGCONT and reaps its children. Returns the killed descendants.
    """
    deadline = time.monotonic() + timeout
    frozen: list[int] = []
    try:
        _signal(root, signal.SIGSTOP)
        _wait_stopped([root], deadline)
        while new := [p for p in descendants(root) if p not in frozen]:
            for pid in new:
                _signal(pid, signal.SIGSTOP)
            frozen += new
            _wait_stopped(new, deadline)
        if before_kill is not None:
            before_kill(frozen)
    finally:
        for pid in frozen:
            _signal(pid, signal.SIGKILL)
        _signal(root, signal.SIGKILL if kill_root else signal.SIGCONT)
    if left := wait_gone(frozen, timeout):
        raise ProcessTreeError(f"processes survived SIGKILL: {left}")
    return frozen
