"""How many execution log files are kept: :class:`Retention` (a cap by count, age
and bytes), applied by the log writer as it creates files.

A service running tasks around the clock would otherwise gain a file per task for
ever (five tasks a second is over 400,000 files a day). The writer tells the
retention of each file it creates and of each byte it writes; past any cap the oldest
files go (oldest first), so the folder stays within :data:`DEFAULT_MAX_FILES` files,
:data:`DEFAULT_MAX_BYTES` bytes and :data:`DEFAULT_MAX_AGE` seconds, or what
:func:`~actorcluster.runtimes.log_files.configure_execution_logs` set. Files already
in the folder when the process starts (an earlier run's) are counted at the first
file created, so they are pruned too.

Everything here runs on the log writer's thread; nothing takes a lock.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "Retention",
    "RetentionPolicy",
]

log = get_logger(__name__)

DEFAULT_MAX_FILES = 10_000
"""Execution log files kept by default (the newest)."""
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""Bytes of execution log files kept by default."""
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
"""Seconds an execution log file is kept by default."""
_AGE_CHECK_EVERY = 60.0
"""Seconds between checks for files past the age cap (besides each prune by count)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The caps on the execution log folder; None: no cap of that kind.

    Raises:
        ConfigurationError: a cap that is not a positive number.
    """

    max_files: int | None = DEFAULT_MAX_FILES
    """At most this many files (the newest are kept)."""
    max_bytes: int | None = DEFAULT_MAX_BYTES
    """At most this many bytes in all the files."""
    max_age: float | None = DEFAULT_MAX_AGE
    """Files older than this many seconds go."""

    def __post_init__(self) -> None:
        for name in ("max_files", "max_bytes", "max_age"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(
                    f"execution log {name} must be a positive number or None, not {value!r}"
                )


class Retention:
    """The files of one log folder, oldest first, pruned to a :class:`RetentionPolicy`.

    Args:
        root: the log folder (one sub-folder per host).
        policy: the caps.
        clock: ``time.time``, or a fake in tests.
    """

    def __init__(
        self,
        root: str,
        policy: RetentionPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.policy = policy
        self._clock = clock
        self._files: collections.OrderedDict[str, tuple[float, int]] = collections.OrderedDict()
        self._bytes = 0
        self._scanned = False
        self._age_checked = 0.0
        self.removed = 0
        """How many files this retention removed."""

    def __repr__(self) -> str:
        return f"<Retention {self.root} files={len(self._files)} bytes={self._bytes}>"

    @property
    def file_count(self) -> int:
        """Files known in the folder now."""
        return len(self._files)

    @property
    def byte_count(self) -> int:
        """Bytes of the files known in the folder now."""
        return self._bytes

    def created(self, path: str) -> None:
        """A file was created at ``path``; prune past the caps."""
        if not self._scanned:
            self._scan()
        self._files[path] = (self._clock(), 0)
        self._prune()

    def grew(self, path: str, size: int) -> None:
        """The file at ``path`` has ``size`` bytes now; prune past the byte cap."""
        entry = self._files.get(path)
        if entry is None:
            return
        self._files[path] = (entry[0], size)
        self._bytes += size - entry[1]
        if self.policy.max_bytes is not None and self._bytes > self.policy.max_bytes:
            self._prune()

    def _scan(self) -> None:
        """Count the files already in the folder (an earlier run's), oldest first."""
        self._scanned = True
        found: list[tuple[float, str, int]] = []
        with contextlib.suppress(OSError), os.scandir(self.root) as hosts:
            for host in hosts:
                if not host.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError), os.scandir(host.path) as files:
                    for entry in files:
                        if entry.name.endswith(".log") and entry.is_file(follow_symlinks=False):
                            info = entry.stat(follow_symlinks=False)
                            found.append((info.st_mtime, entry.path, info.st_size))
        found.sort()
        for mtime, path, size in found:
            self._files[path] = (mtime, size)
            self._bytes += size

    def _prune(self) -> None:
        policy = self.policy
        removed = 0
        while self._files and policy.max_files is not None and len(self._files) > policy.max_files:
            removed += self._remove_oldest()
        while self._files and policy.max_bytes is not None and self._bytes > policy.max_bytes:
            if len(self._files) == 1:
                break  # the file being written stays, however large
            removed += self._remove_oldest()
        now = self._clock()
        if policy.max_age is not None and now - self._age_checked >= min(
            _AGE_CHECK_EVERY, policy.max_age
        ):
            self._age_checked = now
            while self._files and now - next(iter(self._files.values()))[0] > policy.max_age:
                removed += self._remove_oldest()
        if removed:
            self.removed += removed
            log.debug("task.log_files.pruned", folder=self.root, removed=removed)

    def _remove_oldest(self) -> int:
        path, (_, size) = self._files.popitem(last=False)
        self._bytes -= size
        try:
            os.unlink(path)
        except FileNotFoundError:
            return 0
        except OSError as error:
            log.warning("task.log_file.remove_failed", path=path, error=str(error))
            return 0
        return 1
