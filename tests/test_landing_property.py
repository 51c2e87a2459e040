"""Laws of landing a tree: a merge is the old tree updated with the new one, a clash
changes nothing, and modes never gain a bit the sender or the umask did not allow."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster.remote.agent.landing import PartialTree, file_mode, is_partial_name

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
trees = st.dictionaries(paths, st.binary(max_size=8), max_size=6)


def _folders(files: dict[str, bytes]) -> set[str]:
    """Every folder the files' paths go through."""
    return {
        "/".join(path.split("/")[:depth])
        for path in files
        for depth in range(1, path.count("/") + 1)
    }


def _consistent(files: dict[str, bytes]) -> bool:
    """No path is both a file and a folder."""
    return not (set(files) & _folders(files))


def _write(root: str, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as file:
            file.write(data)


def _read(root: str) -> dict[str, bytes]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, "rb") as file:
                found[os.path.relpath(full, root)] = file.read()
    return found


def _tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@settings(max_examples=150, deadline=None)
@given(old=trees, new=trees)
def test_a_merge_is_the_old_tree_updated_with_the_new_or_a_clash_changing_nothing(
    old: dict[str, bytes], new: dict[str, bytes]
) -> None:
    if not (_consistent(old) and _consistent(new)):
        return
    clash = bool(set(new) & _folders(old)) or bool(_folders(new) & set(old))
    with tempfile.TemporaryDirectory() as scratch:
        target = os.path.join(scratch, "target")
        os.mkdir(target)
        _write(target, old)
        tree = PartialTree(target, umask=0o022)
        tree.extract(io.BytesIO(_tar_of(new)))
        try:
            tree.commit()
        except OSError:
            assert clash
            assert _read(target) == old
        else:
            assert not clash
            assert _read(target) == {**old, **new}
        leftovers = [name for _, dirs, files in os.walk(scratch) for name in dirs + files]
        assert not [name for name in leftovers if is_partial_name(name)]


@given(
    sent=st.integers(0, 0o7777),
    umask=st.integers(0, 0o777),
    special=st.booleans(),
)
def test_a_landed_mode_has_no_bit_the_sender_or_the_umask_did_not_allow(
    sent: int, umask: int, special: bool
) -> None:
    mode = file_mode(sent, "/nonexistent", umask, special=special)
    assert mode & ~sent == 0
    assert mode & umask == 0
    special_bits = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
    assert mode & special_bits == (sent & special_bits & ~umask if special else 0)
    assert mode & 0o777 == sent & 0o777 & ~umask
