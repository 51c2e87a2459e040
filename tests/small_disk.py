"""A tiny tmpfs for full-disk tests (mounting needs root; tests skip without it)."""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sshbed import SshHost

__all__ = ["mounted_tmpfs"]


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str = "1m", *, host: SshHost | None = None) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``mount`` (created), unmount it after.

    ``host``: the disk is that bed host's, mounted where its sshd and its sessions see it.
    An isolated host is a separate machine with disks of its own (its sshd runs in a mount
    namespace of its own), so this machine does not see the tmpfs there: look at it
    through the host. Skips the calling test where mounting is not allowed.
    """
    mount.mkdir(parents=True, exist_ok=True)
    enter = ["nsenter", f"--mount=/proc/{host.pid}/ns/mnt", "--"] if host is not None else []
    made = subprocess.run(
        [*enter, "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run([*enter, "umount", str(mount)], check=True)
