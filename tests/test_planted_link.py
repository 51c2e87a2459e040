"""An upload never follows a symbolic link another user planted at its target: a
folder (or file) sent to a path in a shared folder where a second user put a link to a
folder of ours fails with FileTransferError, and nothing lands in the linked folder;
a link of our own is followed as before."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime
from actorcluster.errors import FileTransferError
from local_users import other_user_fixture, run_as  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sshbed import SshBed

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A sticky world-writable folder, as /tmp is (under /tmp: others can reach it)."""
    folder = Path(tempfile.mkdtemp(prefix="actorcluster-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_upload_does_not_follow_a_link_another_user_planted(
    ssh_bed: SshBed, other_user: str, shared_tmp: Path, tmp_path: Path
) -> None:
    victim = Path(tempfile.mkdtemp(prefix="actorcluster-victim-", dir="/tmp"))
    try:
        planted = shared_tmp / "results"
        made = run_as(other_user, "ln", "-s", str(victim), str(planted))
        assert made.returncode == 0, made.stderr
        source = tmp_path / "results"
        source.mkdir()
        (source / "data.txt").write_text("ours")
        single = tmp_path / "single.txt"
        single.write_text("ours")
        rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
        try:
            with pytest.raises(FileTransferError, match="symbolic link of another user"):
                rt.send_file(str(source), str(planted))
            with pytest.raises(FileTransferError, match="symbolic link of another user"):
                rt.send_file(str(single), str(planted))
            assert os.listdir(victim) == []
            ours = shared_tmp / "ours"
            ours.symlink_to(victim)  # our own link is followed
            rt.send_file(str(source), str(ours))
            assert (victim / "data.txt").read_text() == "ours"
        finally:
            rt.cleanup()
    finally:
        shutil.rmtree(victim, ignore_errors=True)
