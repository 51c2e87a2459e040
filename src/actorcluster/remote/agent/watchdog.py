"""The agent's watchdog: cleans up after the agent even when the agent is killed outright.

The agent cleans up when its stdin ends, but a SIGKILL (the OOM killer, a user's
``kill -9``) gives it no chance: the process groups it started would run on as orphans
and its temporary directories would stay. So at start, while still single-threaded, the
agent forks a small watchdog in its own session that holds the read end of a pipe. The
agent writes a line per process group started or ended, per temporary directory, and
per partial transfer begun or landed (a file or folder under a temporary ``.*.part``
name, see :mod:`landing`), and its mark (:mod:`strays`); when the pipe ends (the agent
exited, whichever way) the watchdog terminates the groups still listed and the
processes that carry the mark outside them (SIGTERM, a short grace, SIGKILL), removes
the partial transfers still listed and the directories, then exits.

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import stat
import threading
import time

from .landing import is_partial_name
from .strays import Strays

__all__ = [
    "note_clean_exit",
    "note_grace",
    "note_group_ended",
    "note_group_started",
    "note_mark",
    "note_partial",
    "note_temp_dir",
    "remove_partial",
    "remove_unless_held",
    "start_watchdog",
    "try_lock",
]

_GRACE = 0.5
_pipe: list[int] = []
"""The write end of the pipe to the watchdog, once started."""
_lock = threading.Lock()


def start_watchdog() -> None:
    """Fork the watchdog (call once, before any thread starts)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watchdog
        os.close(write_end)
        _detach()
        _watch(read_end)
        os._exit(0)
    os.close(read_end)
    _pipe.append(write_end)


def _detach() -> None:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # never hold the agent's stream or the session's pipes
    os.close(devnull)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _State:
    """What the agent told its watchdog."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.temp_dirs: list[str] = []
        self.partials: set[str] = set()
        self.grace = 0.0
        self.clean_exit = False
        self.mark = ""


def _watch(read_end: int) -> None:
    state = _State()
    buffer = b""
    while True:
        data = os.read(read_end, 65536)
        if not data:
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            _apply(line.decode("utf-8", "surrogateescape"), state)
    for path in state.partials:
        remove_partial(path)
    if not state.clean_exit:
        _clean_up(state)


def _apply(line: str, state: _State) -> None:
    kind, _, value = line.partition(" ")
    if kind == "+G":
        state.groups.add(int(value))
    elif kind == "-G":
        state.groups.discard(int(value))
    elif kind == "+D" and value not in state.temp_dirs:
        state.temp_dirs.append(value)
    elif kind == "+W":
        state.grace = float(value)
    elif kind == "X":
        state.clean_exit = True
    elif kind == "+M":
        state.mark = value
    elif kind in ("+P", "-P"):
        path = os.fsdecode(bytes.fromhex(value))  # hex: a name may hold a newline
        if kind == "+P":
            state.partials.add(path)
        else:
            state.partials.discard(path)


def remove_partial(path: str) -> None:
    """Remove a partial transfer's temporary file or folder (a name of another kind,
    or something that is not ours, is left alone)."""
    if not is_partial_name(os.path.basename(path)):
        return
    try:
        info = os.lstat(path)
    except OSError:
        return
    if info.st_uid != os.getuid():
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _signal_all(groups: set[int], sig: int) -> set[int]:
    alive = set()
    for group in groups:
        try:
            os.killpg(group, sig)
            alive.add(group)
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def _clean_up(state: _State) -> None:
    """The agent died: its processes go at once (their output has nowhere to go); its
    folders after the session's grace, unless a new agent took them over meanwhile."""
    alive = _signal_all(state.groups, signal.SIGTERM)
    escaped = Strays(state.mark, alive)
    escaped.terminate()
    deadline = time.monotonic() + _GRACE
    while (alive or escaped.running()) and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = _signal_all(alive, 0)
    _signal_all(alive, signal.SIGKILL)
    escaped.kill()
    if state.grace > 0:
        time.sleep(state.grace)
    for path in state.temp_dirs:
        remove_unless_held(path)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` (a folder) if nobody holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_unless_held(path: str) -> None:
    """Remove the folder ``path`` unless an agent holds it (see ``Hub.hold_dir``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # gone already
    try:
        if try_lock(fd):
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


def _note(line: str) -> None:
    if not _pipe:
        return
    data = (line + "\n").encode("utf-8", "surrogateescape")
    # If the watchdog is gone, the agent's own clean-up still runs.
    with _lock, contextlib.suppress(OSError):
        os.write(_pipe[0], data)


def note_group_started(pgid: int) -> None:
    """A process group the watchdog must kill if the agent dies."""
    _note(f"+G {pgid}")


def note_group_ended(pgid: int) -> None:
    """That process group is empty now."""
    _note(f"-G {pgid}")


def note_mark(mark: str) -> None:
    """The agent's mark: the processes that carry it die with the agent (:mod:`strays`)."""
    _note(f"+M {mark}")


def note_temp_dir(path: str) -> None:
    """A directory the watchdog must remove if the agent dies (after the grace)."""
    _note(f"+D {path}")


def note_grace(seconds: float) -> None:
    """The session's grace: how long the folders of a dead agent wait for a new one."""
    _note(f"+W {seconds}")


def note_clean_exit() -> None:
    """The agent cleaned up itself: nothing is left for the watchdog to do."""
    _note("X")


def note_partial(path: str, started: bool) -> None:
    """A partial transfer's temporary path: to remove if the agent dies (``started``),
    or no more (it landed or is gone)."""
    _note(f"{'+' if started else '-'}P {os.fsencode(path).hex()}")
