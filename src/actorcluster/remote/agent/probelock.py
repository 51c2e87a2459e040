"""The lock that makes port probes of one user's agents on a machine take turns.

A probe holds its port for a moment; two agents on one machine (a group's runtimes
that are logins to the same host, or ``localhost`` and this host over SSH) probing the
same port at once would each see the other's probe as a taker. Holding this lock while
probing makes their probes take turns.

It is an ``flock`` on a file in a folder only this user can enter
(``$XDG_RUNTIME_DIR``, else ``<tmp>/actorcluster-<uid>``, 0700 and ours, checked), so
no other user can hold it: a name in Linux's abstract socket namespace, as before,
could be bound by anyone, and made every probe wait its full bounded wait. Where no
private folder can be had, probes go ahead without it.

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Unix
    fcntl = None  # type: ignore[assignment]

__all__ = ["lock_path", "probe_lock"]

WAIT = 2.0
"""Seconds a probe waits for another agent's probe before going ahead."""
_NAME = "port-probe.lock"


def _private(folder: str) -> bool:
    """Whether ``folder`` is a folder of ours that no one else can enter."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def lock_path() -> str | None:
    """The lock file's path, in a private folder (made if need be); None if none."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or ""
    if os.path.isabs(runtime_dir) and _private(runtime_dir):
        return os.path.join(runtime_dir, "actorcluster-" + _NAME)
    folder = os.path.join(tempfile.gettempdir(), f"actorcluster-{os.getuid()}")
    with contextlib.suppress(OSError):
        os.mkdir(folder, 0o700)
    return os.path.join(folder, _NAME) if _private(folder) else None


@contextlib.contextmanager
def probe_lock() -> Iterator[bool]:
    """Hold the lock (a bounded wait); yields whether it is held."""
    path = lock_path() if fcntl is not None else None
    if path is None:
        yield False
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        yield False
        return
    try:
        held = False
        deadline = time.monotonic() + WAIT
        while not held:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.001)  # another agent probes now: a few ports, microseconds
        yield held
    finally:
        os.close(fd)  # closing releases the lock
