"""Session folders: where an agent listens for re-attaches, and the sweep of those that
agents no longer running left behind.

Each agent makes ``<tmp>/actorcluster-session-XXXX`` (private, 0700) holding only its
re-attach socket, and removes it as it ends; its watchdog does if the agent is killed.
An agent killed together with its watchdog (a whole session tree SIGKILLed) leaves the
folder. Its ledger (:mod:`partials`) tells the next agent to remove it; where that
ledger is lost, every agent, as it starts (in the background), also removes this user's
private session folders whose socket nobody listens on any more (``/proc/net/unix``;
without it, nothing is swept).

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time

__all__ = ["PREFIX", "SOCKET_NAME", "listening_sockets", "new_folder", "sweep"]

PREFIX = "actorcluster-session-"
SOCKET_NAME = "agent.sock"
MIN_AGE = 60.0
"""Seconds: a younger folder may be an agent's that has not listened yet."""
_ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def new_folder() -> str:
    """A new private session folder."""
    return tempfile.mkdtemp(prefix=PREFIX)


def listening_sockets() -> set[str] | None:
    """The paths of the Unix sockets something listens on, from ``/proc/net/unix``
    (None where it cannot be read)."""
    try:
        with open("/proc/net/unix", "rb") as file:
            lines = file.read().splitlines()[1:]
    except OSError:
        return None
    paths: set[str] = set()
    for line in lines:
        # Num RefCount Protocol Flags Type St Inode Path
        fields = line.split(None, 7)
        with contextlib.suppress(ValueError):
            if len(fields) == 8 and int(fields[3], 16) & _ACCEPTING:
                paths.add(os.fsdecode(fields[7]))
    return paths


def sweep(now: float | None = None) -> int:
    """Remove this user's session folders that no agent listens in any more (and that
    hold nothing but the socket); return how many. Never raises."""
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return 0
    candidates = [entry for entry in entries if _abandoned(entry, now)]
    listening = listening_sockets() if candidates else None
    if listening is None:
        return 0
    swept = 0
    for entry in candidates:
        if os.path.join(entry.path, SOCKET_NAME) not in listening:
            with contextlib.suppress(OSError):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(entry.path, SOCKET_NAME))
                os.rmdir(entry.path)
                swept += 1
    return swept


def _abandoned(entry: os.DirEntry[str], now: float) -> bool:
    """Whether ``entry`` may be a session folder whose agent is gone: a private folder
    of ours, old enough, holding nothing but the socket."""
    if not entry.name.startswith(PREFIX):
        return False
    try:
        info = entry.stat(follow_symlinks=False)
        names = os.listdir(entry.path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & 0o077
        and now - info.st_mtime > MIN_AGE
        and set(names) <= {SOCKET_NAME}
    )
