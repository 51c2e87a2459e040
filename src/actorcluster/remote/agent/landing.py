"""Landing a transfer all or nothing, with safe file modes (used by both ends).

Stdlib only (see the package docstring): the agent lands uploads with it, the client
lands downloads with it.

- A file is written to a hidden temporary name beside its target
  (``.<name>.<random>.part``) and renamed over the target once all of it arrived; on
  any failure the temporary file is removed. A reader never sees half a file.
- A folder tree arrives as a tar stream. It is extracted into a hidden temporary folder
  (beside the target when the target does not exist yet, inside it when it does, so
  that it is on the target's file system), and only once the whole stream arrived is it
  moved into place: renamed as the target, or merged into the existing target like
  ``scp -r`` and ``tar`` do (entries of the same name are replaced, folders are merged).
  Before anything moves, every clash of a folder with a non-folder is looked for; one
  fails the transfer with the target untouched. An interrupted transfer leaves the
  target as it was.
- Modes: a received file keeps the permission bits it had on the sending side (like
  ``scp``), less the receiver's umask. Setuid, setgid and sticky bits are dropped unless
  the transfer asked to keep them (``special``). Received folders always stay readable,
  writable and searchable by their owner. Owners are never taken from the stream: what
  lands belongs to the receiving user.
- Links: a symbolic link in a tree stays a link, whatever it points to (an absolute
  link too), and is never written through: a member whose path resolves outside the
  folder (through ``..``, an absolute name, or a link extracted before it) fails the
  transfer. Hard links must point inside the folder. Device files and FIFOs are skipped.

Every temporary path is announced to an optional ``notify(path, started)`` hook before
it is created and again once it is gone or renamed, so the agent can tell its watchdog
(which removes what is left if the agent dies).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import stat
import tarfile
import typing
from typing import IO, Any

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "PART_SUFFIX",
    "Notify",
    "PartialFile",
    "PartialTree",
    "current_umask",
    "file_mode",
    "is_partial_name",
    "refuse_planted_link",
]

PART_SUFFIX = ".part"
"""How every temporary name of a transfer ends (they also start with a dot)."""
_SPECIAL = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_NAME_KEEP = 80
"""Characters of the target's name kept in a temporary name (names stay under 255)."""
_COPY_CHUNK = 1024 * 1024

Notify = typing.Callable[[str, bool], None]  # typing.: evaluated at run time (Python 3.8)
"""``notify(path, started)``: a temporary path is about to exist (True) or is gone (False)."""


def current_umask() -> int:
    """This process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):  # noqa: SIM117 (3.8 has no (a, b) form)
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: the one way, briefly changing it
    os.umask(mask)
    return mask


def _keep_bits(special: bool) -> int:
    return 0o7777 if special else 0o777


def file_mode(sent: int | None, target: str, umask: int, *, special: bool = False) -> int:
    """The mode a received file gets.

    Args:
        sent: the file's mode on the sending side; None for "not said": then an
            existing target's mode is kept, and a new file gets ``0o666`` less the umask.
        target: where the file lands.
        umask: the receiver's umask (applied to ``sent``).
        special: keep setuid, setgid and sticky bits (dropped otherwise).
    """
    if sent is not None:
        return sent & _keep_bits(special) & ~umask
    try:
        return stat.S_IMODE(os.stat(target).st_mode) & _keep_bits(special)
    except FileNotFoundError:
        return 0o666 & ~umask


def refuse_planted_link(path: str) -> None:
    """Raise if ``path`` is a symbolic link another user made (neither we nor root): an
    upload never follows a link planted at its target (in a shared ``/tmp``, say) into
    a folder the user did not name, as Linux's ``protected_symlinks`` would not."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode) and info.st_uid not in (os.getuid(), 0):
        raise PermissionError(
            errno.EPERM,
            f"the target is a symbolic link of another user (uid {info.st_uid}); not followed",
            path,
        )


def is_partial_name(name: str) -> bool:
    """Whether a file name is one of a transfer's temporary names."""
    return name.startswith(".") and name.endswith(PART_SUFFIX)


def _fresh_name(folder: str, name: str) -> str:
    return os.path.join(folder, f".{name[:_NAME_KEEP]}.{os.urandom(6).hex()}{PART_SUFFIX}")


def _announced(
    folder: str, name: str, notify: Notify | None, create: Callable[[str], Any]
) -> tuple[str, Any]:
    """Announce a fresh temporary path in ``folder``, then create it with ``create``."""
    while True:
        path = _fresh_name(folder, name)
        if notify is not None:
            notify(path, True)
        try:
            return path, create(path)
        except FileExistsError:
            if notify is not None:
                notify(path, False)
        except BaseException:
            if notify is not None:
                notify(path, False)
            raise


class PartialFile:
    """A file being received: written beside ``target``, renamed over it at the end.

    Args:
        target: where the file lands (its folder is created if missing).
        notify: told about the temporary path (see the module docstring).
    """

    def __init__(self, target: str, notify: Notify | None = None) -> None:
        folder, name = os.path.split(target)
        os.makedirs(folder or ".", exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self.target = target
        self.received = 0
        self._notify = notify
        self._gone = False
        self.temp, self._fd = _announced(
            folder or ".", name, notify, lambda path: os.open(path, flags, 0o600)
        )

    def write(self, data: bytes) -> None:
        """Append a chunk."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.received += len(data)

    def commit(self, mode: int) -> None:
        """Set ``mode`` and rename over the target (on failure, the file is discarded)."""
        try:
            os.fchmod(self._fd, mode)
            fd, self._fd = self._fd, -1
            os.close(fd)
            os.replace(self.temp, self.target)
        except BaseException:
            self.discard()
            raise
        self._forget()

    def discard(self) -> None:
        """Drop what was written (again is harmless)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
        if not self._gone:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)
        self._forget()

    def _forget(self) -> None:
        if not self._gone:
            self._gone = True
            if self._notify is not None:
                self._notify(self.temp, False)


class PartialTree:
    """A folder tree being received as a tar stream: extracted aside, moved in at the end.

    Args:
        target: the folder the tree's content goes into (created if missing).
        umask: the receiver's umask (applied to every mode in the stream).
        special: keep setuid, setgid and sticky bits.
        notify: told about the temporary folder (see the module docstring).

    Raises:
        NotADirectoryError: ``target`` exists and is not a folder.
    """

    def __init__(
        self, target: str, *, umask: int, special: bool = False, notify: Notify | None = None
    ) -> None:
        self.target = target
        self._umask = umask
        self._special = special
        self._notify = notify
        self._gone = False
        refuse_planted_link(target)
        self._into = os.path.isdir(target)
        if self._into:
            folder, name = target, "actorcluster"
        elif os.path.lexists(target):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", target)
        else:
            folder, name = os.path.split(os.path.abspath(target))
            os.makedirs(folder, exist_ok=True)
        self.temp, _ = _announced(folder, name, notify, lambda path: os.mkdir(path, 0o700))

    def extract(self, stream: IO[bytes]) -> None:
        """Extract the tar stream ``stream`` into the temporary folder, then read the
        stream to its end (padding after the archive)."""
        extra: dict[str, Any] = {}
        if hasattr(tarfile, "fully_trusted_filter"):
            extra["filter"] = "fully_trusted"  # _safe_members did the checking already
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            members = _safe_members(archive, self.temp, self._umask, self._special)
            archive.extractall(self.temp, members=members, **extra)
        while stream.read(_COPY_CHUNK):
            pass

    def commit(self) -> None:
        """Move the tree into place (on failure, the temporary tree is discarded)."""
        try:
            if self._into:
                _merge(self.temp, self.target)
            else:
                os.chmod(self.temp, 0o777 & ~self._umask)
                try:
                    os.rename(self.temp, self.target)
                except OSError as exc:  # the target appeared meanwhile: merge into it
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    _merge(self.temp, self.target)
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary tree, or what is left of it (again is harmless)."""
        if self._gone:
            return
        shutil.rmtree(self.temp, ignore_errors=True)
        self._gone = True
        if self._notify is not None:
            self._notify(self.temp, False)


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _safe_members(
    archive: tarfile.TarFile, dest: str, umask: int, special: bool
) -> Iterator[tarfile.TarInfo]:
    """The archive's members as they may be extracted into ``dest`` (see the module
    docstring); raises :class:`tarfile.TarError` on a member that must not be.

    Lazy: each member is checked after the ones before it were extracted, so a link
    extracted earlier is seen when later paths are resolved.
    """
    root = os.path.realpath(dest)
    keep = _keep_bits(special)
    for member in archive:
        name = member.name.lstrip("/")
        where = os.path.realpath(os.path.join(root, name))
        if not _inside(root, where):
            raise tarfile.TarError(f"refusing {member.name!r}: it would land outside the folder")
        kept = member.isreg() or member.isdir() or member.issym() or member.islnk()
        if where == root or not kept:
            continue  # the folder itself, device files, FIFOs
        if member.islnk():
            linked = os.path.realpath(os.path.join(root, member.linkname))
            if os.path.isabs(member.linkname) or not _inside(root, linked):
                raise tarfile.TarError(
                    f"refusing hard link {member.name!r} to {member.linkname!r} outside the folder"
                )
        safe = copy.copy(member)
        safe.name = name
        safe.mode = member.mode & keep & ~umask
        if member.isdir():
            safe.mode |= 0o700
        safe.uid = safe.gid = -1  # never chown: what lands is the receiver's
        safe.uname = safe.gname = ""
        yield safe


def _clashes(source: str, target: str) -> None:
    """Raise if merging ``source`` into ``target`` would put a folder over a non-folder
    or the other way round (nothing moved yet)."""
    stack = [(source, target)]
    while stack:
        here, there_root = stack.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                there = os.path.join(there_root, entry.name)
                try:
                    info = os.lstat(there)
                except FileNotFoundError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not stat.S_ISDIR(info.st_mode):
                        raise NotADirectoryError(errno.ENOTDIR, "a folder cannot replace", there)
                    stack.append((entry.path, there))
                elif stat.S_ISDIR(info.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "a file cannot replace the folder", there)


def _merge(source: str, target: str) -> None:
    """Move ``source``'s content into the folder ``target``: new entries are renamed in
    whole, entries of the same name replaced, folders present in both merged."""
    _clashes(source, target)
    stack = [(source, target)]
    while stack:
        here, there_root = stack.pop()
        with os.scandir(here) as scan:
            entries = list(scan)
        for entry in entries:
            there = os.path.join(there_root, entry.name)
            if entry.is_dir(follow_symlinks=False) and os.path.lexists(there):
                stack.append((entry.path, there))  # a folder there too (_clashes checked)
            else:
                os.replace(entry.path, there)
