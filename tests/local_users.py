"""A second local user for tests of what another user of the machine can do."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["OTHER_USER", "SYSTEM_PYTHON", "other_user_fixture", "run_as"]

OTHER_USER = "actorcluster-other"
SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter the other user can run (ours lives under /root, 0700)."""


@pytest.fixture(scope="module", name="other_user")
def other_user_fixture() -> Iterator[str]:
    """A second local user (created for the module, removed after; skips without root)."""
    if os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists():
        pytest.skip("needs root (to add a user) and /usr/bin/python3")
    created = False
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=False,
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            pytest.skip(f"useradd failed: {done.stderr.decode()[-300:]}")
        created = True
    yield OTHER_USER
    if created:
        subprocess.run(["userdel", OTHER_USER], check=False, capture_output=True, timeout=30)


def run_as(user: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` as ``user`` (from ``/``)."""
    return subprocess.run(
        ["runuser", "-u", user, "--", *command],
        check=False,
        capture_output=True,
        timeout=timeout,
        cwd="/",
    )
