"""Execution log files: one per task execution, written off the task's path, private.

Every execution of a task gets a file at ``task.execution_log_file_path`` (lazycluster's
``<task>_<timestamp>.log``, one folder per host), with one ``[i] output`` entry per
step, appended as each step ends. The writing happens on one shared thread (which ends
when idle), never on the path a task's result takes. A task whose steps printed nothing
gets its file only when its path is asked for (see ``RuntimeTask``), since creating a
file costs more than such a task's whole run.

The files hold everything commands print, tokens included, so they are private: the
folder is ``$ACTORCLUSTER_LOG_DIR``, else ``$XDG_STATE_HOME/actorcluster/execution_log``
(``~/.local/state/...``), else a per-user folder in the system's temporary directory;
folders are created 0700 and must be ours and not writable by others, files are created
0600 with ``O_EXCL | O_NOFOLLOW``, so a link planted at a predictable name is refused,
never followed. A file that cannot be written is logged once and skipped: it never
fails a task.

Retention (:mod:`~actorcluster.runtimes.log_retention`): the folder keeps at most
10,000 files, 512 MiB and 7 days of them by default, the oldest going first;
:func:`configure_execution_logs` changes the caps, the folder, or (``execution_log_dir=
None``) turns the files off altogether (``execution_log_file_path`` is then None; the
in-memory ``execution_log`` is kept as before).
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import stat
import tempfile
import threading
import time
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger
from actorcluster._workers import Workers
from actorcluster.runtimes.log_retention import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    Retention,
    RetentionPolicy,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DEFAULT_LOG_DIR",
    "LOG_DIR_ENV_VAR",
    "UnsafeLogDirError",
    "configure_execution_logs",
    "execution_log_dir",
    "flush",
    "log_file_path",
    "write_entry",
]

log = get_logger(__name__)

LOG_DIR_ENV_VAR = "ACTORCLUSTER_LOG_DIR"
"""Environment variable naming the folder execution logs go to."""
_IDLE_SECONDS = 2.0
_FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_numbers = itertools.count(1)
DEFAULT_LOG_DIR = "default"
"""``configure_execution_logs(execution_log_dir=DEFAULT_LOG_DIR)``: the folder named in
the module docstring."""
_settings: dict[str, object] = {"dir": DEFAULT_LOG_DIR, "policy": RetentionPolicy()}


class UnsafeLogDirError(OSError):
    """A log folder is not ours, or others may write to it."""


def configure_execution_logs(
    execution_log_dir: str | None = DEFAULT_LOG_DIR,
    *,
    max_files: int | None = DEFAULT_MAX_FILES,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_age: float | None = DEFAULT_MAX_AGE,
) -> None:
    """Set where execution log files go and how many are kept, for the whole process
    (each call sets every setting; what it leaves out goes back to its default).

    Args:
        execution_log_dir: the folder (one sub-folder per host); None: no files at all;
            :data:`DEFAULT_LOG_DIR`: ``$ACTORCLUSTER_LOG_DIR`` or the per-user default.
        max_files: keep at most this many files (the newest); None: no cap.
        max_bytes: keep at most this many bytes of files; None: no cap.
        max_age: remove files older than this many seconds; None: no cap.

    Raises:
        ConfigurationError: a cap that is not a positive number.
    """
    policy = RetentionPolicy(max_files=max_files, max_bytes=max_bytes, max_age=max_age)
    flush()
    _settings["dir"] = execution_log_dir
    _settings["policy"] = policy
    _WRITER.reset()


def execution_log_dir() -> str:
    """Where execution log files go (see the module docstring), even when they are
    turned off (see :func:`log_file_path`)."""
    configured = _settings["dir"]
    if isinstance(configured, str) and configured != DEFAULT_LOG_DIR:
        return configured
    key = (
        os.environ.get(LOG_DIR_ENV_VAR),
        os.environ.get("XDG_STATE_HOME"),
        os.environ.get("HOME"),
    )
    return _log_dir(*key)


@functools.lru_cache(maxsize=8)
def _log_dir(configured: str | None, state: str | None, home: str | None) -> str:
    if configured:
        return configured
    home = home or os.path.expanduser("~")
    state = state or os.path.join(home, ".local", "state")
    if os.path.isabs(state) and os.access(home, os.W_OK):
        return os.path.join(state, "actorcluster", "execution_log")
    return os.path.join(tempfile.gettempdir(), f"actorcluster-{os.getuid()}", "execution_log")


def log_file_path(host: str, task: str) -> str | None:
    """A fresh file path for one execution of ``task`` on ``host``; None when files are
    turned off (``configure_execution_logs(execution_log_dir=None)``)."""
    if _settings["dir"] is None:
        return None
    stamp = _stamp()
    safe_host = host.replace(os.sep, "_") or "_"
    safe_task = task.replace(os.sep, "_") or "_"
    name = f"{safe_task}_{stamp}-{next(_numbers)}.log"
    return os.path.join(execution_log_dir(), safe_host, name)


_stamps: tuple[int, str] = (-1, "")
"""The latest second a path was made in, and its stamp (formatted once a second)."""


def _stamp() -> str:
    """``time.strftime("%Y%m%d-%H%M%S")`` of now."""
    global _stamps  # noqa: PLW0603 - one tuple, replaced whole (thread-safe)
    second = int(time.time())
    cached, stamp = _stamps
    if second != cached:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(second))
        _stamps = (second, stamp)
    return stamp


def _private_dir(path: str) -> None:
    """Create ``path`` (0700, with parents) or check an existing one is private to us."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeLogDirError(f"log folder {path} is not a folder (a link?)")
    if info.st_uid != os.getuid():
        raise UnsafeLogDirError(f"log folder {path} belongs to uid {info.st_uid}, not us")
    if info.st_mode & 0o022:
        mode = info.st_mode & 0o777
        raise UnsafeLogDirError(f"log folder {path} is writable by others (mode {mode:o})")
    if info.st_mode & 0o077:  # ours, made readable by an older version: closed now
        os.chmod(path, 0o700)


def _our_folders(folder: str) -> list[str]:
    """``folder`` and the folders above it that we made ours, outermost first: the
    log root, and in the temporary-directory fallback the per-user folder above it."""
    root = os.path.dirname(folder)
    chain = [root, folder]
    above = os.path.dirname(root)
    if os.path.basename(above) in (f"actorcluster-{os.getuid()}", "actorcluster"):
        chain.insert(0, above)  # ~/.local/state/actorcluster too: 0700, not makedirs' 0755
    return chain


class _Writer:
    """A thread that appends entries to files, in order; it ends when idle."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: collections.deque[tuple[str, int, list[str]]] = collections.deque()
        self._thread = False
        """Whether the writer thread runs (it ends once idle for ``_IDLE_SECONDS``)."""
        self._workers = Workers("actorcluster-log-writer", limit=1, linger=0.0)
        self._busy = False
        self._checked: set[str] = set()
        self._failed: set[str] = set()
        self._retentions: dict[str, Retention] = {}

    def reset(self) -> None:
        """Forget the retentions (the settings changed); the next file rescans."""
        with self._condition:
            self._retentions = {}

    def retention(self, root: str) -> Retention:
        """The retention of log folder ``root`` (on the writer thread)."""
        retention = self._retentions.get(root)
        if retention is None:
            policy = _settings["policy"]
            assert isinstance(policy, RetentionPolicy)
            retention = self._retentions[root] = Retention(root, policy)
        return retention

    def put(self, path: str, index: int, pieces: list[str]) -> None:
        with self._condition:
            self._queue.append((path, index, pieces))
            if not self._thread:
                self._thread = True
                self._workers.submit(self._run)
            else:
                self._condition.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued is written; False if ``timeout`` passed."""
        deadline = Deadline(timeout)
        with self._condition:
            while self._queue or self._busy:
                if deadline.expired():
                    return False
                self._condition.wait(min(deadline.remaining(), 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._queue:
                    self._condition.wait(_IDLE_SECONDS)
                if not self._queue:
                    self._thread = False
                    self._condition.notify_all()
                    return
                path, index, pieces = self._queue.popleft()
                self._busy = True
            try:
                self._write(path, index, pieces)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _write(self, path: str, index: int, pieces: Iterable[str]) -> None:
        if path in self._failed:
            return
        folder = os.path.dirname(path)
        try:
            if folder not in self._checked:
                for ancestor in _our_folders(folder):
                    _private_dir(ancestor)
                self._checked.add(folder)
            fd = os.open(path, _FILE_FLAGS | (os.O_EXCL if index == 0 else 0), 0o600)
            retention = self.retention(os.path.dirname(folder))
            if index == 0:
                retention.created(path)
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as file:
                file.write(f"[{index}] ")
                file.writelines(pieces)
                file.write("\n")
                file.flush()
                retention.grew(path, os.fstat(fd).st_size)
        except OSError as error:
            self._failed.add(path)
            self._checked.discard(folder)
            log.warning("task.log_file_failed", path=path, error=str(error))


_WRITER = _Writer()


def write_entry(path: str, index: int, pieces: list[str]) -> None:
    """Append step ``index``'s entry (its output, as pieces) to the file at ``path``,
    soon, on the writer thread. Step 0 creates the file (refusing one that exists)."""
    _WRITER.put(path, index, pieces)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every entry queued so far is written (for tests and ``print_log``)."""
    return _WRITER.flush(timeout)
