"""Ending what the agent started: each command's process group, and with it the
processes that left the group but carry the agent's mark (:mod:`strays`).

The agent makes itself the *child subreaper* of what it starts (Linux,
``prctl(PR_SET_CHILD_SUBREAPER)``): an orphaned descendant (a daemon's double fork,
``(setsid cmd &)``) is re-parented to the agent, not to init, so it stays in the agent's
process tree. A cancelled command (:func:`terminate_run`) takes with it its process
group, every descendant of its shell whatever session it moved to, and every process
carrying the command's own mark (:data:`strays.RUN_MARK_VARIABLE`), then reaps those of
them re-parented to the agent. Orphans that end by themselves stay zombies of the
agent until it exits (the agent never reaps a child it did not kill: that would steal
the exit status of a process a ``subprocess`` call waits for).

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from . import strays

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterable

__all__ = [
    "become_subreaper",
    "descendants",
    "group_alive",
    "kill_run_later",
    "terminate_groups",
    "terminate_run",
]

PR_SET_CHILD_SUBREAPER = 36
"""prctl(2)'s option number (Linux 3.4+)."""


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux); False where
    that is not possible. Never raises."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # only where it is used, on Linux

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, list[int]]:
    """Each live process's children (zombies left out), from /proc (empty without it)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    children: dict[int, list[int]] = {}
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as file:
                    fields = file.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) > 1 and fields[0] not in (b"Z", b"X"):
                children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (in any process group or session)."""
    children = _parents()
    found: list[int] = []
    stack = [pid]
    while stack:
        kids = children.get(stack.pop(), [])
        found.extend(kids)
        stack.extend(kids)
    return found


class _Pids:
    """Processes held by pidfds where the kernel offers them (a reused pid is never
    signalled), else by pid."""

    def __init__(self, pids: list[int]) -> None:
        self.held: list[tuple[int, int | None]] = []
        pidfd_open = getattr(os, "pidfd_open", None)
        for pid in pids:
            fd = None
            if pidfd_open is not None:
                try:
                    fd = pidfd_open(pid)
                except OSError:
                    continue  # gone already
            self.held.append((pid, fd))

    def signal(self, sig: int) -> None:
        send = getattr(signal, "pidfd_send_signal", None)
        for pid, fd in self.held:
            with contextlib.suppress(OSError):
                if fd is not None and send is not None:
                    send(fd, sig)
                else:
                    os.kill(pid, sig)

    def running(self) -> bool:
        return any(not _gone(pid) for pid, _ in self.held)

    def close(self) -> None:
        for _, fd in self.held:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.held = []


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[:1] in ([b"Z"], [b"X"])
    except OSError:
        return True


def _reap(pids: set[int], timeout: float = 1.0) -> None:
    """Reap those of ``pids`` that are (now) children of this process: processes the
    agent killed that were re-parented to it, its being their subreaper."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours (yet: its parent may still be dying)
                if not os.path.exists(f"/proc/{pid}"):
                    pending.discard(pid)  # reaped by whoever it belonged to
                continue
            if done:
                pending.discard(pid)
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.005)


def terminate_run(proc: subprocess.Popen[bytes], grace: float, run_mark: str | None) -> None:
    """End one command and everything it started: SIGTERM its process group, every
    descendant of its shell (``setsid`` ones included) and every process carrying
    ``run_mark``; wait up to ``grace`` seconds; SIGKILL the rest; reap those
    re-parented to the agent."""
    tree = _Pids(descendants(proc.pid))
    alive = _still_running([proc])
    for each in alive:
        _signal_group(each, signal.SIGTERM)
    tree.signal(signal.SIGTERM)
    escaped = strays.Strays(run_mark, {proc.pid}, variable=strays.RUN_MARK_VARIABLE)
    escaped.terminate()
    deadline = time.monotonic() + grace
    while (alive or tree.running() or escaped.running()) and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = _still_running(alive)
    for each in alive:
        _signal_group(each, signal.SIGKILL)
    tree.signal(signal.SIGKILL)
    escaped.kill()
    _reap({pid for pid, _ in tree.held} | escaped.killed)
    tree.close()


def kill_run_later(proc: subprocess.Popen[bytes], run_mark: str, grace: float = 1.0) -> None:
    """:func:`terminate_run` on a background thread (a CANCEL must not block the reader)."""
    threading.Thread(
        target=terminate_run, args=(proc, grace, run_mark), name="agent-kill", daemon=True
    ).start()


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
