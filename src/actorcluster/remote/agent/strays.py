"""Processes a command left its process group with: found by a mark in their environment.

Each RUN's command starts in a process group (and session) of its own, and the agent
kills that group when the session ends. A process that moves to another group or
session (``setsid``, a daemon's double fork, a shell's job control) is out of reach of
that kill, and nothing else would end it. So every RUN's environment carries
:data:`MARK_VARIABLE` set to the agent's mark (:func:`new_mark`: random, one per agent),
which the command's descendants inherit whatever group they end up in. When the
session ends, the agent (or, if the agent was killed, its watchdog) kills every
process of this user whose environment carries that mark, together with the groups.

A process that carries another agent's mark, or none, is never signalled: the mark is
checked once a pidfd holds the process, so a pid reused meanwhile is not mistaken for
it. Another agent (one a command started, and its watchdog) is left alone too: it ends
its own session when its client goes and cleans up after itself (killing its watchdog
could leave that agent's processes behind).

Not found: a process started with the variable removed from its environment (``env -u
ACTORCLUSTER_AGENT ...``: the way to start something that must outlive the session),
one that replaced its environment (``env -i``, ``sudo``), one of another user, and any
process where there is no ``/proc`` (macOS: there the groups are killed only).

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["MARK_VARIABLE", "RUN_MARK_VARIABLE", "Strays", "marked", "new_mark"]

MARK_VARIABLE = "ACTORCLUSTER_AGENT"
"""The environment variable that marks the processes of an agent's commands."""
RUN_MARK_VARIABLE = "ACTORCLUSTER_RUN"
"""The environment variable that marks the processes of one command (``<agent mark>.<request
id>``): a cancelled command's descendants are found by it, whatever group they moved to."""
_ROUNDS = 5
"""Most scans for marked processes at the end (a process may fork while being killed)."""
_AGENT = b"actorcluster.remote.agent"
"""In the command line of every agent and watchdog (the bootstrap's comment says it)."""


def new_mark() -> str:
    """A mark no other agent has: this process's id and random bytes."""
    return f"{os.getpid()}-{os.urandom(12).hex()}"


def _entry(mark: str, variable: str = MARK_VARIABLE) -> bytes:
    return f"{variable}={mark}".encode()


def _carries(pid: int, entry: bytes, uid: int) -> bool:
    """Whether ``pid`` is a process of ``uid`` whose environment holds ``entry``."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return False
        with open(f"/proc/{pid}/environ", "rb") as file:
            environment = file.read()
    except OSError:  # gone, or not ours to read
        return False
    return entry in environment.split(b"\0")


def _is_agent(pid: int) -> bool:
    """Whether ``pid`` is an actorcluster agent or its watchdog (by command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return _AGENT in file.read()
    except OSError:
        return False


def _group(pid: int) -> int | None:
    """``pid``'s process group, None if it is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def marked(mark: str, variable: str = MARK_VARIABLE) -> list[int]:
    """The live processes of this user whose environment carries ``mark`` (in
    ``variable``), but for this one and any agent or watchdog (empty where there is no
    ``/proc``)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    entry, uid, me = _entry(mark, variable), os.getuid(), os.getpid()
    return [
        int(name)
        for name in names
        if name.isdigit()
        and int(name) != me
        and _carries(int(name), entry, uid)
        and not _is_agent(int(name))
    ]


class _Held:
    """One marked process, held by a pidfd where the kernel offers one."""

    def __init__(self, pid: int, fd: int | None) -> None:
        self.pid = pid
        self.fd = fd

    def signal(self, sig: int) -> None:
        with contextlib.suppress(OSError):
            if self.fd is None:
                os.kill(self.pid, sig)
            else:
                signal.pidfd_send_signal(self.fd, sig)

    def running(self) -> bool:
        if self.fd is None:
            return _group(self.pid) is not None and not _zombie(self.pid)
        readable, _, _ = select.select([self.fd], [], [], 0)
        return not readable  # a pidfd is readable once its process exited

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return True


def _hold(pid: int, entry: bytes, uid: int) -> _Held | None:
    """``pid`` held, if it (still) carries ``entry`` once held; else None."""
    pidfd_open = getattr(os, "pidfd_open", None)
    fd: int | None = None
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except OSError:
            return None  # gone already
    if _carries(pid, entry, uid):  # checked after the pidfd: the pidfd is that process
        return _Held(pid, fd)
    if fd is not None:
        os.close(fd)
    return None


class Strays:
    """The processes carrying an agent's mark, outside the groups killed as groups.

    Args:
        mark: the agent's mark (None or empty: there are none).
        groups: process groups killed as groups: their members are left to that.
        variable: the environment variable holding the mark (one RUN's own mark is in
            :data:`RUN_MARK_VARIABLE`).
    """

    def __init__(
        self, mark: str | None, groups: Collection[int] = (), variable: str = MARK_VARIABLE
    ) -> None:
        self._mark = mark or ""
        self._variable = variable
        self.killed: set[int] = set()
        """The pids :meth:`kill` signalled."""
        self._held: list[_Held] = []
        if self._mark:
            self._held = self._find(exclude=set(), groups=groups)

    def __len__(self) -> int:
        return len(self._held)

    def _find(self, exclude: set[int], groups: Collection[int] = ()) -> list[_Held]:
        entry, uid = _entry(self._mark, self._variable), os.getuid()
        found = []
        for pid in marked(self._mark, self._variable):
            if pid in exclude or _group(pid) in groups:
                continue
            held = _hold(pid, entry, uid)
            if held is not None:
                found.append(held)
        return found

    def terminate(self) -> None:
        """SIGTERM each of them."""
        for held in self._held:
            held.signal(signal.SIGTERM)

    def running(self) -> bool:
        """Whether any of them still runs."""
        return any(held.running() for held in self._held)

    def kill(self) -> None:
        """SIGKILL those still running, then any marked process found since (one may
        have forked meanwhile), a few rounds at most; release the pidfds."""
        seen: set[int] = set()
        try:
            for _ in range(_ROUNDS):
                for held in self._held:
                    held.signal(signal.SIGKILL)
                    seen.add(held.pid)
                fresh = self._find(exclude=seen) if self._mark else []
                if not fresh:
                    return
                self._close()
                self._held = fresh
                time.sleep(0.001)  # let a fork under way finish, so the next scan sees it
        finally:
            self.killed |= seen
            self._close()

    def _close(self) -> None:
        for held in self._held:
            held.close()
        self._held = []
