"""Tearing a bed's sshd down: kill a host's sessions, repair what they leave, watchdog.

Run as ``python3 sshbed_teardown.py BED_DIR`` it is the bed's watchdog: it waits until
its stdin closes (the process that started the bed stopped it, or died, even by
SIGKILL), then kills every sshd of the bed still running, found by its pid file, and
an isolated bed's namespaces and links (its block, in ``BED_DIR/netblock``; it holds the
block's lock until then, so no other bed takes the block first).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from proctree import ProcessTreeError, cmdline, environ, kill_tree, matching

__all__ = ["kill_sessions_of", "remove_stale_pyenv_lock", "watchdog"]

STALE_LOCK_AGE = 60.0
"""Seconds after which a pyenv rehash lock is a leftover: a rehash holds it well under
a second (and a login waits at most PYENV_REHASH_TIMEOUT for it)."""


def _pyenv_locks(pids: list[int]) -> list[Path]:
    """The rehash lock of each ``pyenv rehash`` among ``pids`` (frozen, about to die)."""
    return [
        Path(environ(pid).get("PYENV_ROOT", Path.home() / ".pyenv"), "shims", ".pyenv-shim")
        for pid in pids
        if b"pyenv-rehash" in cmdline(pid)
    ]


def kill_sessions_of(listener: int, *, kill_listener: bool) -> list[int]:
    """Kill the listener's sessions (and the listener), then undo what they left behind.

    Every host of the bed shares this machine's home, so a session killed while its rc
    files ran ``pyenv rehash`` (root's do here) leaves pyenv's lock file, and every later
    login waits on it (PYENV_REHASH_TIMEOUT, 60 s by default). A real host going down
    leaves nothing on the client: remove the lock unless a live rehash may hold it.
    """
    locks: list[Path] = []
    killed = kill_tree(
        listener, kill_root=kill_listener, before_kill=lambda pids: locks.extend(_pyenv_locks(pids))
    )
    if locks:
        held = _pyenv_locks(matching(b"pyenv-rehash"))
        for lock in set(locks) - set(held):
            lock.unlink(missing_ok=True)
    return killed


def remove_stale_pyenv_lock() -> bool:
    """Remove this user's pyenv rehash lock if it is a leftover (older than
    :data:`STALE_LOCK_AGE`): a session killed mid-rehash by anyone (another test run, a
    Ctrl-C) leaves it, and then every login of every bed waits PYENV_REHASH_TIMEOUT
    (2-3 s here) for it, too slow for tests that drop connections every few seconds.
    Live rehashes keep waiting on it meanwhile, so "no rehash runs" cannot tell; its age
    can. Return whether one was removed."""
    lock = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "shims", ".pyenv-shim")
    with contextlib.suppress(OSError):
        if time.time() - lock.stat().st_mtime > STALE_LOCK_AGE:
            lock.unlink()
            return True
    return False


def watchdog(root: Path) -> None:
    """Block until stdin closes (the bed's process stopped the bed or died), then clean up."""
    sys.stdin.buffer.read()
    for pid_file in root.glob("host-*/sshd.pid"):
        with contextlib.suppress(ValueError, OSError, ProcessTreeError):
            pid = int(pid_file.read_text())
            if str(pid_file.parent / "sshd_config").encode() in cmdline(pid):
                kill_sessions_of(pid, kill_listener=True)
                print(f"watchdog: killed orphaned sshd {pid} of {pid_file.parent}", flush=True)
    block_file = root / "netblock"  # an isolated bed: its namespaces and links go too
    with contextlib.suppress(ValueError, OSError):
        from sshbed_net import remove_block

        removed = remove_block(int(block_file.read_text()))
        block_file.unlink(missing_ok=True)
        print(f"watchdog: removed orphaned namespaces {removed}", flush=True)


if __name__ == "__main__":
    watchdog(Path(sys.argv[1]))
