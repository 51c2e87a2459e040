"""PUT and GET: files and folder trees moved in chunks.

Stdlib only (see the package docstring).

Uploads (PUT, PUT_CHUNK*, PUT_END, all with the request id of the PUT) are handled on
the frame-reading thread, in order. A file is written to a hidden temporary name
beside its target and renamed into place at PUT_END, so a reader never sees half a
file. A folder arrives as a tar stream, fed through a pipe to a thread that extracts
it with tarfile's streaming mode and, where Python has it, the "data" filter (no
absolute paths, no links out of the folder, no device files). An upload that fails
answers ERROR once; the rest of its chunks are dropped.

Downloads (GET) run on their own thread: a file as DATA {kind: "file", data, mode on
the first chunk} chunks, a folder as DATA {kind: "tar", data} chunks of a tar stream
of its content, then RESULT {value: bytes sent}.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from . import frames

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["CHUNK_SIZE", "Uploads", "get_request"]

Kind = frames.Kind

CHUNK_SIZE = 1024 * 1024
"""Bytes per DATA frame of a download."""


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _default_mode() -> int:
    """The mode a new file gets from the umask (read without changing it for good)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


class _FileUpload:
    """An upload of one file, written beside its target and renamed at the end."""

    def __init__(self, path: str, mode: int | None, name: str | None) -> None:
        if name and (path.endswith("/") or os.path.isdir(path)):
            path = os.path.join(path, name)  # into the folder, under the file's own name
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot upload a file onto the folder {path!r}")
        parent, name = os.path.split(path)
        os.makedirs(parent, exist_ok=True)
        self._path = path
        self._mode = mode
        self._fd, self._temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=parent)
        self.received = 0

    def write(self, data: bytes) -> None:
        """Append a chunk."""
        _write_all(self._fd, data)
        self.received += len(data)

    def close(self, hub: Hub, request_id: int) -> None:
        """Set the mode, rename into place, answer RESULT."""
        mode = self._mode
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(self._path).st_mode)
            except FileNotFoundError:
                mode = _default_mode()
        os.fchmod(self._fd, mode)
        os.close(self._fd)
        self._fd = -1
        os.replace(self._temp, self._path)
        hub.finish(request_id, Kind.RESULT, {"value": self.received, "path": self._path})

    def discard(self) -> None:
        """Drop what was written so far."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


class _TarUpload:
    """An upload of a folder: a tar stream piped to an extracting thread."""

    def __init__(self, hub: Hub, request_id: int, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self._path = path
        read_fd, self._write_fd = os.pipe()
        self.received = 0
        self._thread = threading.Thread(
            target=self._extract,
            args=(hub, request_id, path, os.fdopen(read_fd, "rb")),
            name=f"agent-untar-{request_id}",
            daemon=True,
        )
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Feed a chunk to the extracting thread (BrokenPipeError once it failed)."""
        _write_all(self._write_fd, data)
        self.received += len(data)

    def close(self, hub: Hub, request_id: int) -> None:
        """End the stream; the extracting thread answers once it is done."""
        self.discard()

    def discard(self) -> None:
        """End the stream (the extracting thread stops)."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1

    def _extract(self, hub: Hub, request_id: int, path: str, stream: Any) -> None:
        """Extract the tar stream into ``path``, then answer RESULT or ERROR."""
        try:
            with stream, tarfile.open(fileobj=stream, mode="r|") as archive:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(path, filter="data")
                else:
                    _extract_checked(archive, path)
                while stream.read(CHUNK_SIZE):
                    pass  # padding after the end of the archive, up to PUT_END
            hub.finish(request_id, Kind.RESULT, {"value": self.received, "path": self._path})
        except Exception as exc:  # a bad archive or a full disk: the upload fails
            hub.fail(request_id, exc)


def _extract_checked(archive: tarfile.TarFile, path: str) -> None:
    """Extract without tarfile's filters (old Pythons), refusing unsafe members."""
    root = os.path.realpath(path)

    def inside(name: str) -> bool:
        resolved = os.path.realpath(name)
        return resolved == root or resolved.startswith(root + os.sep)

    for member in archive:
        target = os.path.join(root, member.name)
        unsafe = os.path.isabs(member.name) or not inside(target)
        if member.issym():
            unsafe = unsafe or not inside(os.path.join(os.path.dirname(target), member.linkname))
        elif member.islnk():
            unsafe = unsafe or not inside(os.path.join(root, member.linkname))
        if unsafe or member.isdev():
            raise tarfile.TarError(f"refusing to extract unsafe member {member.name!r}")
        member.mode &= 0o777
        archive.extract(member, root, set_attrs=not member.issym())


class Uploads:
    """The uploads in progress, fed by the frame-reading thread."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._open: dict[int, _FileUpload | _TarUpload] = {}
        hub.add_cleanup(self.discard_all)

    def begin(self, request_id: int, payload: dict[str, Any]) -> None:
        """PUT {path, kind, mode, name?}: open an upload (ERROR at once if it cannot).

        A file whose ``path`` is a folder (or ends with ``/``) goes into it as ``name``.
        """
        if not self._hub.open(request_id):
            return
        try:
            path = self._hub.resolve(payload.get("path"))
            kind = payload.get("kind")
            mode = payload.get("mode")
            if mode is not None and not isinstance(mode, int):
                raise TypeError(f"'mode' must be int, not {type(mode).__name__}")
            name = payload.get("name")
            if name is not None and (not isinstance(name, str) or os.path.basename(name) != name):
                raise ValueError(f"'name' must be a plain file name, not {name!r}")
            if kind == "file":
                upload: _FileUpload | _TarUpload = _FileUpload(path, mode, name)
            elif kind == "tar":
                upload = _TarUpload(self._hub, request_id, path)
            else:
                raise ValueError(f"unknown upload kind {kind!r}; expected 'file' or 'tar'")
        except Exception as exc:  # reported to the client; later chunks are dropped
            self._hub.fail(request_id, exc)
            return
        self._open[request_id] = upload
        self._hub.set_abort(request_id, lambda: self._drop(request_id))

    def chunk(self, request_id: int, payload: dict[str, Any]) -> None:
        """PUT_CHUNK {data}: append to an open upload (dropped if there is none)."""
        upload = self._open.get(request_id)
        if upload is None:
            return
        try:
            data = payload.get("data")
            if not isinstance(data, bytes):
                raise TypeError(f"'data' must be bytes, not {type(data).__name__}")
            upload.write(data)
        except Exception as exc:  # answered once; the rest of the upload is dropped
            self._drop(request_id)
            self._hub.fail(request_id, exc)

    def end(self, request_id: int) -> None:
        """PUT_END: complete an open upload (ignored if there is none)."""
        upload = self._open.pop(request_id, None)
        if upload is None:
            return
        try:
            upload.close(self._hub, request_id)
        except Exception as exc:  # the rename or chmod failed
            upload.discard()
            self._hub.fail(request_id, exc)

    def _drop(self, request_id: int) -> None:
        """Forget an upload and discard what it wrote."""
        upload = self._open.pop(request_id, None)
        if upload is not None:
            upload.discard()

    def discard_all(self) -> None:
        """Discard every open upload (at exit: no partial file is left behind)."""
        for request_id in list(self._open):
            self._drop(request_id)


class _CancelledError(Exception):
    """The download's request was cancelled."""


class _ChunkSink:
    """A write-only file that sends what tarfile writes as DATA chunks."""

    def __init__(self, hub: Hub, request_id: int) -> None:
        self._hub = hub
        self._request_id = request_id
        self._buffer = bytearray()
        self.sent = 0

    def write(self, data: bytes) -> int:
        """Buffer ``data``; send full chunks."""
        self._buffer += data
        if len(self._buffer) >= CHUNK_SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        """Send what is buffered as one DATA frame."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            if not self._hub.emit(self._request_id, Kind.DATA, {"kind": "tar", "data": data}):
                raise _CancelledError
            self.sent += len(data)


def get_request(hub: Hub, request_id: int, payload: dict[str, Any]) -> None:
    """GET {path}: DATA chunks of a file or of a folder's tar stream, then RESULT."""
    path = hub.resolve(payload.get("path"))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file or folder: {path}") from None
    try:
        if stat.S_ISDIR(info.st_mode):
            sent = _send_tree(hub, request_id, path)
        else:
            sent = _send_file(hub, request_id, path, stat.S_IMODE(info.st_mode))
    except _CancelledError:
        return
    hub.finish(request_id, Kind.RESULT, {"value": sent})


def _send_file(hub: Hub, request_id: int, path: str, mode: int) -> int:
    """Send a file in DATA chunks (at least one); return its size."""
    size = 0
    with open(path, "rb") as source:
        first: dict[str, Any] | None = {"mode": mode}
        while True:
            data = source.read(CHUNK_SIZE)
            if not data and first is None:
                return size
            chunk = {"kind": "file", "data": data, **(first or {})}
            first = None
            if not hub.emit(request_id, Kind.DATA, chunk):
                raise _CancelledError
            size += len(data)


def _send_tree(hub: Hub, request_id: int, path: str) -> int:
    """Send a folder's content as a tar stream in DATA chunks; return its length."""
    sink = _ChunkSink(hub, request_id)
    with tarfile.open(fileobj=sink, mode="w|") as archive:  # type: ignore[call-overload]
        for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
            archive.add(entry.path, arcname=entry.name)
    sink.flush()
    return sink.sent
