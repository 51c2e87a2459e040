"""No leaks: a cleaned-up runtime leaves nothing in its supervisor, and opening and
cleaning up runtimes over and over keeps memory, threads and file descriptors flat.

CI runs :data:`CI_CYCLES` cycles with the RSS limit scaled to them; the full 1,000
runs with the ``soak`` marker when ``ACTORCLUSTER_SOAK=1``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import TYPE_CHECKING

import paramiko
import pytest

from actorcluster import InvalidRuntimeError, Runtime
from actorcluster.supervisors import root_supervisor, supervisor_proxy

if TYPE_CHECKING:
    from sshbed import SshBed

CI_CYCLES = 150
FULL_CYCLES = 1000
GROWTH_PER_1000 = 5 * 1024 * 1024
"""RSS a thousand cycles may add after warm-up (before the fix: ~12 MB locally,
~70 MB over SSH)."""


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _root_children() -> list[str]:
    children = supervisor_proxy(root_supervisor()).which_children().get(timeout=10)
    return [child.id for child in children]


def _alive_transports() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, paramiko.Transport))


def _cycles(count: int) -> None:
    for _ in range(20):  # warm-up: caches, the root tree, the timer thread
        Runtime("localhost").cleanup()
    gc.collect()
    rss, threads, fds, children = _rss(), threading.active_count(), _fds(), _root_children()
    started = time.monotonic()
    for _ in range(count):
        Runtime("localhost").cleanup()
    gc.collect()
    growth = _rss() - rss
    took = time.monotonic() - started
    print(f"{count} cycles in {took:.1f} s: RSS +{growth / 2**20:.2f} MiB")
    assert _root_children() == children
    assert threading.active_count() == threads
    assert _fds() == fds
    limit = max(1024 * 1024, GROWTH_PER_1000 * count // FULL_CYCLES)
    assert growth < limit, f"{count} cycles grew RSS by {growth} bytes (limit {limit})"


def test_a_cleaned_up_runtime_leaves_nothing_in_its_supervisor(ssh_bed: SshBed) -> None:
    before = _root_children()
    transports = _alive_transports()
    for _ in range(3):
        Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs).cleanup()
    broken = {**ssh_bed.connection_kwargs, "python": "/nonexistent/python3"}
    with pytest.raises(InvalidRuntimeError):
        Runtime("host-1", connection_kwargs=broken)
    assert _root_children() == before
    deadline = time.monotonic() + 10  # their reader threads end just after cleanup
    while _alive_transports() > transports and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_transports() <= transports


@pytest.mark.slow
def test_open_and_cleanup_cycles_keep_memory_threads_and_fds_flat() -> None:
    _cycles(CI_CYCLES)


@pytest.mark.soak
@pytest.mark.timeout(1200)
@pytest.mark.skipif(not os.environ.get("ACTORCLUSTER_SOAK"), reason="set ACTORCLUSTER_SOAK=1")
def test_a_thousand_open_and_cleanup_cycles_keep_memory_threads_and_fds_flat() -> None:
    _cycles(FULL_CYCLES)
