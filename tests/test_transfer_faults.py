"""Transfers on real sshd hosts: all or nothing under a partition, a killed agent and a
full disk; modes without setuid, setgid and sticky bits unless asked; links kept."""

from __future__ import annotations

import errno
import os
import signal
import stat
import time
from typing import TYPE_CHECKING

import pytest

from actorcluster import FileTransferError, HostUnreachableError, Runtime, RuntimeTask
from actorcluster.remote.agent.landing import is_partial_name
from proctree import cmdline
from small_disk import mounted_tmpfs
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sshbed import SshBed

MIB = 1024 * 1024


def _partials(root: Path) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
        if is_partial_name(name)
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _listing_on(rt: Runtime, folder: Path) -> list[str]:
    """``folder``'s entries as the runtime's host sees them (on a separate machine, its
    disk is not this machine's)."""
    (listing,) = rt.execute_function(os.listdir, path=str(folder)).function_returns
    return listing


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


@pytest.mark.slow
def test_a_partition_during_a_large_upload_fails_it_typed_and_leaves_no_partial_file(
    make_ssh_bed: Callable[[int], SshBed], tmp_path: Path
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    source = _sparse(tmp_path / "big.bin", 200 * MIB)
    dest = tmp_path / "dest"
    dest.mkdir()
    kwargs = {**bed.connection_kwargs, "heartbeat_interval": 0.5, "heartbeat_timeout": 3}
    with Runtime("host-1", connection_kwargs=kwargs) as rt:
        task = rt.send_file(str(source), str(dest / "big.bin"), execute_async=True)
        wait_until(lambda: _partials(dest), what="the upload began")
        sessions = [pid for pid in host.session_pids() if cmdline(pid).startswith(b"sshd")]
        assert sessions
        for pid in sessions:
            os.kill(pid, signal.SIGSTOP)  # a partition: the link goes silent
        stopped = time.monotonic()
        try:
            assert task.future is not None
            with pytest.raises(HostUnreachableError, match="host-1"):
                task.future.get(timeout=20)
            took = time.monotonic() - stopped
        finally:
            for pid in sessions:
                os.kill(pid, signal.SIGCONT)
        print(f"upload failed {took:.1f} s after the partition (heartbeat timeout 3 s)")
        wait_until(lambda: not _partials(dest), timeout=40, what="the partial file removed")
        assert os.listdir(dest) == []


@pytest.mark.slow
def test_a_download_cut_by_a_killed_agent_leaves_the_local_folder_as_it_was(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    _sparse(remote / "big.bin", 100 * MIB)
    (remote / "keep").write_bytes(b"new")
    local = tmp_path / "local"
    local.mkdir()
    (local / "keep").write_bytes(b"old")
    with Runtime("host-2", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        agent_pid = rt._handle.context.agent().hello["pid"]
        killed: list[int] = []

        def kill_agent(done: int, total: int | None) -> None:
            if not killed:
                killed.append(done)
                os.kill(agent_pid, signal.SIGKILL)

        task = RuntimeTask("fetch").get_file(str(remote), str(local), progress=kill_agent)
        future = rt.execute_task(task)
        with pytest.raises(HostUnreachableError, match="host-2"):
            future.get(timeout=30)
    assert killed
    assert _files(local) == {"keep": b"old"}
    assert _partials(tmp_path) == []


@pytest.mark.slow
def test_a_full_disk_on_a_folder_upload_is_enospc_and_leaves_nothing(
    ssh_bed: SshBed, tmp_path: Path
) -> None:
    source = tmp_path / "tree"
    source.mkdir()
    for index in range(4):
        (source / f"part-{index}").write_bytes(os.urandom(400 * 1024))
    host = ssh_bed.hosts[2]
    with (
        mounted_tmpfs(tmp_path / "small", host=host) as disk,  # host-3's disk, not ours
        Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs) as rt,
    ):
        with pytest.raises(FileTransferError) as caught:
            rt.send_file(str(source), str(disk / "tree"))
        assert caught.value.errno == errno.ENOSPC
        assert "No space left on device" in str(caught.value)
        assert _listing_on(rt, disk) == []
        with pytest.raises(FileTransferError) as caught:
            rt.send_file(str(_sparse(tmp_path / "big.bin", 2 * MIB)), str(disk / "big.bin"))
        assert caught.value.errno == errno.ENOSPC
        assert _listing_on(rt, disk) == []


# --- modes and links -----------------------------------------------------------------

SPECIAL = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(scope="module")
def runtime(ssh_bed: SshBed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


@pytest.mark.parametrize("preserve", [False, True])
def test_a_setuid_file_arrives_without_the_bit_unless_asked_both_ways(
    runtime: Runtime, tmp_path: Path, preserve: bool
) -> None:
    source = tmp_path / "tool"
    source.write_text("#!/bin/sh\necho ran\n")
    source.chmod(0o6755)
    sent = tmp_path / "sent"
    runtime.send_file(str(source), str(sent), preserve_special_bits=preserve)
    fetched = tmp_path / "fetched"
    runtime.get_file(str(source), str(fetched), preserve_special_bits=preserve)
    for landed in (sent, fetched):
        assert _mode(landed) & 0o700 == 0o700  # the owner's bits travel
        assert _mode(landed) & SPECIAL == (0o6000 if preserve else 0)


def test_special_bits_of_a_folder_tree_are_dropped_both_ways(
    runtime: Runtime, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sticky").mkdir(parents=True)
    (tree / "sticky").chmod(0o1777)
    (tree / "sticky" / "tool").write_text("x")
    (tree / "sticky" / "tool").chmod(0o4777)
    sent, fetched = tmp_path / "sent", tmp_path / "fetched"
    runtime.send_file(str(tree), str(sent))
    runtime.get_file(str(tree), str(fetched))
    for landed in (sent, fetched):
        assert _mode(landed / "sticky") & SPECIAL == 0
        assert _mode(landed / "sticky" / "tool") & SPECIAL == 0
        assert _mode(landed / "sticky" / "tool") & 0o700 == 0o700


def test_a_folder_with_an_absolute_link_round_trips_with_the_link_kept(
    runtime: Runtime, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data").write_text("data")
    (tree / "abs").symlink_to("/etc/hostname")
    (tree / "sub" / "rel").symlink_to("data")
    (tree / "dangling").symlink_to("/nonexistent/anywhere")
    fetched = tmp_path / "fetched"
    runtime.get_file(str(tree), str(fetched))
    sent = tmp_path / "sent"
    runtime.send_file(str(fetched), str(sent))
    for landed in (fetched, sent):
        assert os.readlink(landed / "abs") == "/etc/hostname"
        assert os.readlink(landed / "sub" / "rel") == "data"
        assert os.readlink(landed / "dangling") == "/nonexistent/anywhere"
        assert (landed / "sub" / "data").read_text() == "data"
    assert _partials(tmp_path) == []


def test_a_folder_fetched_into_an_existing_folder_is_merged(
    runtime: Runtime, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    (remote / "sub").mkdir(parents=True)
    (remote / "same").write_bytes(b"new")
    (remote / "sub" / "b").write_bytes(b"new")
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "same").write_bytes(b"old")
    (local / "keep").write_bytes(b"old")
    (local / "sub" / "a").write_bytes(b"old")
    runtime.get_file(str(remote), str(local))
    assert _files(local) == {"keep": b"old", "same": b"new", "sub/a": b"old", "sub/b": b"new"}
    assert _partials(tmp_path) == []
