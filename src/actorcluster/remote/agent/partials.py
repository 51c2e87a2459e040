"""The partial transfers an agent owns, tracked so that none outlives it.

Stdlib only (see the package docstring). Each partial transfer's temporary path (see
:mod:`landing`) is noted twice as it begins and as it lands or goes:

- to the watchdog (:mod:`watchdog`), which removes what is left when the agent dies in
  any way that leaves the watchdog running (a SIGKILL, the OOM killer);
- to this agent's ledger, ``<cache>/actorcluster/partials/<pid>-<start time>``
  (``$XDG_CACHE_HOME``, else ``~/.cache``; a private 0700 folder), for what the
  watchdog cannot cover: the watchdog killed together with the agent (a whole session
  tree killed, a reboot). Every agent, as it starts, sweeps the ledgers of agents that
  no longer run: it removes the partial paths they list that are still there (only
  ``.*.part`` names owned by this user), then the ledger.

An agent that exits cleanly removes its partial transfers and its ledger itself. The
ledger is best effort: where it cannot be kept (no writable home), only the watchdog
stands behind the agent.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading

from . import watchdog

__all__ = ["forget", "ledger_dir", "note", "sweep"]

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
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _ledger_path() -> str:
    """This agent's ledger file ("" if none can be kept); called with the lock held."""
    if not _ledger:
        folder = ledger_dir()
        name = _identity(os.getpid()) or f"{os.getpid()}-0"
        _ledger.append(os.path.join(folder, name) if _private_dir(folder) else "")
    return _ledger[0]


def note(path: str, started: bool) -> None:
    """A partial transfer's temporary path begins to exist (``started``), or is gone."""
    watchdog.note_partial(path, started)
    line = f"{'+' if started else '-'}{os.fsencode(path).hex()}\n".encode("ascii")
    with _lock:
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


def _listed(ledger: str) -> set[str]:
    """The partial paths a ledger lists as still there."""
    paths: set[str] = set()
    with open(ledger, "rb") as file:
        for line in file:
            sign, value = line[:1], line[1:].strip()
            with contextlib.suppress(ValueError):
                path = os.fsdecode(bytes.fromhex(value.decode("ascii")))
                if sign == b"+":
                    paths.add(path)
                elif sign == b"-":
                    paths.discard(path)
    return paths


def sweep() -> int:
    """Remove what agents that no longer run left listed in their ledgers; return how
    many ledgers were swept. Never raises."""
    folder = ledger_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    swept = 0
    for name in names:
        pid, _, _ = name.partition("-")
        if not pid.isdigit() or _identity(int(pid)) == name:
            continue  # not a ledger, or its agent still runs
        ledger = os.path.join(folder, name)
        try:
            paths = _listed(ledger)
        except OSError:
            continue
        for path in paths:
            watchdog.remove_partial(path)
        with contextlib.suppress(OSError):
            os.unlink(ledger)
        swept += 1
    return swept
