"""Another local user cannot make port probes wait: the lock serialising one user's
probes is an flock in a folder only that user enters, not a name in the abstract
socket namespace anyone can bind (holding it made every probe wait 2 s)."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime
from actorcluster.remote.agent.probelock import WAIT, lock_path, probe_lock
from local_users import SYSTEM_PYTHON, other_user_fixture  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sshbed import SshBed

pytestmark = pytest.mark.timeout(120)

HOLD = """
import fcntl, os, socket, sys, time
held = []
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.bind("\\0actorcluster-port-probe")  # the old lock's name
    held.append("abstract")
except OSError:
    pass
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.append("file")
except OSError:
    pass
print(",".join(held) or "nothing", flush=True)
time.sleep(60)
"""


@pytest.fixture
def squatter(other_user: str) -> Iterator[str]:
    """The other user holding what it can of the probe lock; yields what it holds."""
    path = lock_path()
    assert path is not None
    process = subprocess.Popen(
        ["runuser", "-u", other_user, "--", SYSTEM_PYTHON, "-c", HOLD, path],
        stdout=subprocess.PIPE,
        cwd="/",
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().decode().strip()
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_another_user_cannot_hold_the_port_probe_lock(squatter: str, ssh_bed: SshBed) -> None:
    assert squatter in ("abstract", "nothing")  # never the file
    path = lock_path()
    assert path is not None
    folder = os.stat(os.path.dirname(path))
    assert folder.st_uid == os.getuid() and not stat.S_IMODE(folder.st_mode) & 0o077
    with probe_lock() as held:
        assert held
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        started = time.monotonic()
        rt.has_free_port(1)  # probes on the host, same machine, same user
        took = time.monotonic() - started
        assert took < WAIT / 2, f"a probe took {took:.2f} s: it waited for the lock"
    finally:
        rt.cleanup()
