"""This process's open fds, threads and RSS, and the check that a run gave them back.

The baseline is taken after a warm-up (a runtime on each host ran a command, a function
and a transfer, carried a tunnel and a supervised process, Dask was imported and a
client of a cluster connected, and all of it was cleaned up): what stays after that is
what the first use of each part keeps for the life of the process (imported modules,
caches, the interpreter's arenas), not a leak. After the run and its cleanup the counts
must come back within :data:`TOLERANCE` of it, within :data:`SETTLE_TIMEOUT` seconds
(threads end and sockets close asynchronously after a cleanup returns).

Tolerances, and why:

- fds: 0 more. Every socket, pipe and file a run opens is ours to close.
- threads: 0 more. Every actor, reader and keepalive thread ends with its runtime.
- Python memory blocks (``sys.getallocatedblocks()``): 30,000 more (a few MiB of
  objects). What the library keeps after a cleanup shows here, whatever the allocator
  does with the pages.
- RSS: 160 MiB more. Thousands of tasks leave the allocator's arenas and the interpreter's
  free lists larger than after a warm-up of a few (CPython rarely returns freed small
  objects to the system; glibc keeps up to 40 MiB of dead threads' stacks for reuse),
  and the run's own bookkeeping (an outcome per task) is freed only just before the
  check. Measured: +24 MiB after a 60 s CI run of 9,000 tasks (runtimes made with
  ``retain_tasks``: lazycluster's default ledger keeps every task a runtime ran, by
  design, until ``clear_tasks()``; without the bound a run "grew" 90-150 MiB, all of it
  13,000 finished tasks with their futures); with the bound, +24 to +97 MiB over runs
  under a load average of 40-55 on 2 cores while live objects grew by a few thousand
  only: pages the allocator keeps (fragmentation), not objects. The bound is there to
  catch what no count shows: buffers held outside Python objects. A leak as the one
  of issue 26 (~70 KB per runtime, two paramiko transports kept alive) would not show
  in RSS in one run of a few runtimes: the thread, fd and block counts catch it, and
  ``tests/test_leaks.py`` checks RSS over 1,000 open/cleanup cycles.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import gc
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass

__all__ = ["SETTLE_TIMEOUT", "TOLERANCE", "Usage", "back_to", "grown", "object_counts"]

TOLERANCE = {"fds": 0, "threads": 0, "blocks": 30_000, "rss_mb": 160.0}
"""How far above the baseline each count may stay after a run (see the module doc)."""
SETTLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Usage:
    """Open fds, live threads and resident memory (MiB) of this process."""

    fds: int
    threads: int
    rss_mb: float
    blocks: int = 0
    """Memory blocks the interpreter holds (``sys.getallocatedblocks()``)."""

    @classmethod
    def now(cls) -> Usage:
        """The counts now, after a garbage collection and ``malloc_trim`` (glibc keeps
        freed memory in per-thread arenas; what is trimmed was free, not leaked)."""
        gc.collect()
        _trim()
        rss_kb = 0
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        return cls(
            len(os.listdir("/proc/self/fd")),
            threading.active_count(),
            round(rss_kb / 1024, 1),
            sys.getallocatedblocks(),
        )

    def over(self, baseline: Usage) -> dict[str, float]:
        """The counts above ``baseline`` past the tolerance (empty: back at baseline)."""
        excess = {
            "fds": self.fds - baseline.fds,
            "threads": self.threads - baseline.threads,
            "rss_mb": round(self.rss_mb - baseline.rss_mb, 1),
            "blocks": self.blocks - baseline.blocks,
        }
        return {name: value for name, value in excess.items() if value > TOLERANCE[name]}


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def back_to(baseline: Usage, timeout: float = SETTLE_TIMEOUT) -> tuple[Usage, dict[str, float]]:
    """Wait until the counts are back within tolerance of ``baseline``; the last counts
    and what is still over (empty if back)."""
    deadline = time.monotonic() + timeout
    while True:
        usage = Usage.now()
        over = usage.over(baseline)
        if not over or time.monotonic() > deadline:
            return usage, over
        time.sleep(0.5)


def release_captured_records() -> int:
    """Drop the log records pytest's capture holds for its report (their text stays):
    each record of an exception keeps its traceback, the traceback its frames, and the
    frames their data (a hostile host's 16 MiB frame among them). The run's bookkeeping,
    not the library's: hundreds of MiB after a 30-minute run. The number dropped."""
    from _pytest.logging import LogCaptureHandler

    dropped = 0
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LogCaptureHandler):
            dropped += len(handler.records)
            handler.records.clear()
    return dropped


def describe_fds() -> list[str]:
    """What this process's open fds are (for a failure message)."""
    found = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        with contextlib.suppress(OSError):
            found.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return found


def describe_threads() -> list[str]:
    """Names of the live threads (for a failure message)."""
    return sorted(thread.name for thread in threading.enumerate())


def object_counts() -> collections.Counter[str]:
    """Live objects per type name (for a failure message: what grew)."""
    gc.collect()
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def grown(before: collections.Counter[str], top: int = 12) -> list[tuple[str, int]]:
    """The types that grew most since ``before``."""
    now = object_counts()
    now.subtract(before)
    return [(name, count) for name, count in now.most_common(top) if count > 0]
