"""The partial transfers and temporary folders an agent owns, tracked so that none
outlives it.

Stdlib only (see the package docstring). Each partial transfer's temporary path (see
:mod:`landing`) is noted twice as it begins and as it lands or goes, and each temporary
folder (the working dir, the session folder) as it is made, with the session's grace:

- to the watchdog (:mod:`watchdog`), which removes what is left when the agent dies in
  any way that leaves the watchdog running (a SIGKILL, the OOM killer);
- to this agent's ledger, ``<cache>/actorcluster/partials/<pid>-<start time>``
  (``$XDG_CACHE_HOME``, else ``~/.cache``; a private 0700 folder), for what the
  watchdog cannot cover: the watchdog killed together with the agent (a whole session
  tree killed, a reboot). Every agent, as it starts, sweeps the ledgers (in a private
  folder of ours only; each names the machine that wrote it, as a home may be shared)
  of this machine's agents that no longer run: it removes the partial paths they list
  that are still there (only ``.*.part`` names owned by this user), then, once the
  dead agent's grace has passed (a reconnecting client's new agent may take its
  working dir over meanwhile: a folder an agent holds is kept), its folders that are
  still private folders of ours, then the ledger.

An agent that exits cleanly removes its partial transfers and its ledger itself. The
ledger is best effort: where it cannot be kept (no writable home), only the watchdog
stands behind the agent.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import stat
import threading
import time
from typing import TYPE_CHECKING

from . import watchdog

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "forget",
    "host_key",
    "ledger_dir",
    "note",
    "note_grace",
    "note_temp_dir",
    "sweep",
]

_lock = threading.Lock()
_ledger: list[str] = []
"""This agent's ledger path once made ("" when it cannot be kept)."""
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def ledger_dir() -> str:
    """The folder holding the ledgers of this user's agents."""
    cache = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(cache):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "actorcluster", "partials")


def _identity(pid: int) -> str | None:
    """``<pid>-<start time>`` of a running process (so a reused pid is told apart);
    None if it does not run."""
    if not os.path.isdir("/proc/self"):  # no /proc (macOS): the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return f"{pid}-0"
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return f"{pid}-{int(fields[19])}"


def _private_dir(path: str) -> bool:
    """Create ``path`` (0700) or check it is a folder of ours; False if it is not."""
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        info = os.lstat(path)
        ours = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        if ours and info.st_mode & 0o077:  # made readable by an older version: closed now
            os.chmod(path, 0o700)
    except OSError:
        return False
    return ours


def _ledger_path() -> str:
    """This agent's ledger file ("" if none can be kept); called with the lock held."""
    if not _ledger:
        folder = ledger_dir()
        name = _identity(os.getpid()) or f"{os.getpid()}-0"
        private = _private_dir(os.path.dirname(folder)) and _private_dir(folder)  # both 0700
        _ledger.append(os.path.join(folder, name) if private else "")
    return _ledger[0]


def note(path: str, started: bool) -> None:
    """A partial transfer's temporary path begins to exist (``started``), or is gone."""
    watchdog.note_partial(path, started)
    _write(f"{'+' if started else '-'}{os.fsencode(path).hex()}")


def note_temp_dir(path: str) -> None:
    """A temporary folder of this agent (removed when it ends)."""
    _write(f"D{os.fsencode(path).hex()}")


def note_grace(seconds: float) -> None:
    """The session's grace: how long a dead agent's folders wait for a new agent."""
    _write(f"G{float(seconds)!r}")


def host_key() -> str:
    """This machine: its machine id, else its host name (a home shared between machines
    holds the ledgers of all of them)."""
    try:
        with open("/etc/machine-id", "rb") as file:
            key = file.read().strip().decode("ascii", "replace")
    except OSError:
        key = ""
    return key or f"name:{socket.gethostname()}"


def _write(entry: str) -> None:
    line = f"{entry}\n".encode("ascii")
    with _lock:
        if not _ledger:  # a new ledger starts by saying where it was written
            line = f"H{host_key().encode().hex()}\n".encode("ascii") + line
        ledger = _ledger_path()
        if ledger:
            with contextlib.suppress(OSError):
                fd = os.open(ledger, _FLAGS, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)


def forget() -> None:
    """Remove this agent's ledger (at a clean exit, once its partials are gone)."""
    with _lock:
        if _ledger and _ledger[0]:
            with contextlib.suppress(OSError):
                os.unlink(_ledger[0])


class _Listed:
    """What a ledger lists: partial paths still there, folders, the session's grace,
    and the machine that wrote it (None in ledgers of older versions)."""

    def __init__(self) -> None:
        self.partials: set[str] = set()
        self.folders: list[str] = []
        self.grace = 0.0
        self.host: str | None = None


_MAX_GRACE = 86400.0


def _listed(fd: int) -> _Listed:
    """What the ledger open at ``fd`` lists."""
    listed = _Listed()
    with os.fdopen(fd, "rb") as file:
        for line in file:
            sign, value = line[:1], line[1:].strip()
            with contextlib.suppress(ValueError):
                if sign == b"G":
                    listed.grace = min(max(0.0, float(value.decode("ascii"))), _MAX_GRACE)
                    continue
                text = bytes.fromhex(value.decode("ascii"))
                if sign == b"H":
                    listed.host = text.decode("utf-8", "replace")
                    continue
                path = os.fsdecode(text)
                if sign == b"+":
                    listed.partials.add(path)
                elif sign == b"-":
                    listed.partials.discard(path)
                elif sign == b"D" and path not in listed.folders:
                    listed.folders.append(path)
    return listed


def _ours(info: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """Whether ``info`` is of that kind, this user's, and private (no group/other bits)."""
    return kind(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _open_ledger(path: str) -> int | None:
    """The ledger at ``path`` opened, if it is a private file of ours (never a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _ours(os.fstat(fd), stat.S_ISREG):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def sweep() -> int:
    """Remove what agents of this machine that no longer run left listed in their
    ledgers; return how many ledgers were swept (their folders go after their grace, on
    a thread). Only a private ledger folder of ours is read. Never raises."""
    folder = ledger_dir()
    try:
        if not _ours(os.lstat(folder), stat.S_ISDIR):
            return 0
        names = os.listdir(folder)
    except OSError:
        return 0
    here = host_key()
    swept = 0
    for name in names:
        pid, _, _ = name.partition("-")
        if not pid.isdigit() or _identity(int(pid)) == name:
            continue  # not a ledger, or its agent still runs
        ledger = os.path.join(folder, name)
        fd = _open_ledger(ledger)
        if fd is None:
            continue
        try:
            listed = _listed(fd)
        except OSError:
            continue
        if listed.host is not None and listed.host != here:
            continue  # another machine's (a shared home): its agent may well run
        for path in listed.partials:
            watchdog.remove_partial(path)
        if listed.folders:
            threading.Thread(
                target=_remove_folders,
                args=(ledger, listed),
                name="agent-sweep",
                daemon=True,
            ).start()
        else:
            with contextlib.suppress(OSError):
                os.unlink(ledger)
        swept += 1
    return swept


def _remove_folders(ledger: str, listed: _Listed) -> None:
    """After the dead agent's grace, its folders that are still private folders of ours
    and that no agent holds, then its ledger (left for the next agent if this one ends
    first)."""
    try:
        home = os.path.realpath(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        home = os.path.realpath(os.path.expanduser("~"))
    time.sleep(listed.grace)
    for path in listed.folders:
        try:
            private = _ours(os.lstat(path), stat.S_ISDIR)
        except OSError:
            continue  # gone already
        if private and os.path.realpath(path) not in ("/", home):
            watchdog.remove_unless_held(path)
    with contextlib.suppress(OSError):
        os.unlink(ledger)
