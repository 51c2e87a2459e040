"""PUT and GET: files and folder trees moved in chunks, landing all or nothing.

Stdlib only (see the package docstring).

Uploads (PUT, PUT_CHUNK*, PUT_END, all with the request id of the PUT) are handled on
the frame-reading thread, in order, and land as :mod:`landing` describes: a file under
a temporary name beside its target, renamed into place at PUT_END; a folder as a tar
stream, fed through a pipe to a thread that extracts it into a temporary folder and
moves it into place once the stream ended with PUT_END. Every temporary path is noted to
:mod:`partials` (the watchdog and the ledger), so it goes even if the agent is killed.
Modes: the sender's permission bits less this agent's umask; setuid, setgid and sticky
bits only if the PUT asked for them (``special``). An upload that fails answers ERROR
once (with the OS error's errno: a full disk is ENOSPC, not the broken pipe the
extraction left behind); the rest of its chunks are dropped.

Downloads (GET) run on their own thread: a file as DATA {kind: "file", data, mode on
the first chunk} chunks, a folder as DATA {kind: "tar", data} chunks of a tar stream
of its content (links stay links), then RESULT {value: bytes sent}. The receiving end
decides which mode bits to keep.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import threading
from typing import IO, TYPE_CHECKING, Any

from . import frames, landing, partials

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["CHUNK_SIZE", "Uploads", "get_request"]

Kind = frames.Kind

CHUNK_SIZE = 1024 * 1024
"""Bytes per DATA frame of a download."""
_JOIN_AT_EXIT = 5.0
"""Seconds the agent's exit waits for an extraction to stop and remove its tree."""


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _FileUpload:
    """An upload of one file, written beside its target and renamed at the end."""

    def __init__(self, path: str, mode: int | None, name: str | None, special: bool) -> None:
        landing.refuse_planted_link(path.rstrip("/") or path)
        if name and (path.endswith("/") or os.path.isdir(path)):
            path = os.path.join(path, name)  # into the folder, under the file's own name
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "cannot upload a file onto a folder", path)
        self._mode = mode
        self._special = special
        self._file = landing.PartialFile(path, partials.note)

    def write(self, data: bytes) -> None:
        """Append a chunk."""
        self._file.write(data)

    def close(self, hub: Hub, request_id: int, umask: int) -> None:
        """Set the mode, rename into place, answer RESULT."""
        target = self._file.target
        self._file.commit(landing.file_mode(self._mode, target, umask, special=self._special))
        hub.finish(request_id, Kind.RESULT, {"value": self._file.received, "path": target})

    def discard(self) -> None:
        """Drop what was written so far."""
        self._file.discard()


class _TarUpload:
    """An upload of a folder: a tar stream piped to a thread extracting it aside."""

    def __init__(self, hub: Hub, request_id: int, path: str, special: bool, umask: int) -> None:
        self._tree = landing.PartialTree(path, umask=umask, special=special, notify=partials.note)
        read_fd, self._write_fd = os.pipe()
        self._complete = False
        self.received = 0
        self._thread = threading.Thread(
            target=self._extract,
            args=(hub, request_id, os.fdopen(read_fd, "rb")),
            name=f"agent-untar-{request_id}",
            daemon=True,
        )
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Feed a chunk to the extracting thread.

        Once that thread failed (the pipe is broken), chunks are dropped: the thread
        answers with its own error.
        """
        if self._write_fd < 0:
            return
        try:
            _write_all(self._write_fd, data)
        except BrokenPipeError:
            self._close_pipe()
            return
        self.received += len(data)

    def close(self, hub: Hub, request_id: int, umask: int) -> None:
        """End the stream as complete; the extracting thread answers once it is done."""
        self._complete = True
        self._close_pipe()

    def discard(self) -> None:
        """End the stream as given up (the extracting thread removes the tree)."""
        self._close_pipe()

    def join(self) -> None:
        """Wait (bounded) until the extracting thread is done."""
        self._thread.join(_JOIN_AT_EXIT)

    def _close_pipe(self) -> None:
        if self._write_fd >= 0:
            fd, self._write_fd = self._write_fd, -1
            os.close(fd)

    def _extract(self, hub: Hub, request_id: int, stream: IO[bytes]) -> None:
        """Extract the tar stream aside, move it into place, answer RESULT or ERROR."""
        try:
            with stream:
                self._tree.extract(stream)
            if not self._complete:  # cancelled, or the agent is exiting
                self._tree.discard()
                return
            self._tree.commit()
        except Exception as exc:  # a bad archive, a full disk, a clash: the upload fails
            self._tree.discard()
            hub.fail(request_id, exc)
            return
        hub.finish(request_id, Kind.RESULT, {"value": self.received, "path": self._tree.target})


def _upload_fields(payload: dict[str, Any]) -> tuple[Any, int | None, str | None, bool]:
    """PUT's kind, mode, name and special, checked."""
    mode = payload.get("mode")
    if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool)):
        raise TypeError(f"'mode' must be int, not {type(mode).__name__}")
    name = payload.get("name")
    if name is not None and (not isinstance(name, str) or os.path.basename(name) != name):
        raise ValueError(f"'name' must be a plain file name, not {name!r}")
    special = payload.get("special", False)
    if not isinstance(special, bool):
        raise TypeError(f"'special' must be bool, not {type(special).__name__}")
    return payload.get("kind"), mode, name, special


class Uploads:
    """The uploads in progress, fed by the frame-reading thread.

    Creating it sweeps what agents that no longer run left behind (:func:`partials.sweep`).
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._open: dict[int, _FileUpload | _TarUpload] = {}
        self._lock = threading.Lock()
        """Held while an upload's descriptor is written or closed (exit comes from
        another thread)."""
        self._umask = landing.current_umask()
        partials.sweep()
        hub.add_cleanup(self.discard_all)

    def begin(self, request_id: int, payload: dict[str, Any]) -> None:
        """PUT {path, kind, mode, name?, special?}: open an upload (ERROR at once if it
        cannot). A file whose ``path`` is a folder (or ends with ``/``) goes into it as
        ``name``; ``special`` keeps setuid, setgid and sticky bits."""
        if not self._hub.open(request_id):
            return
        try:
            path = self._hub.resolve(payload.get("path"))
            kind, mode, name, special = _upload_fields(payload)
            if kind == "file":
                upload: _FileUpload | _TarUpload = _FileUpload(path, mode, name, special)
            elif kind == "tar":
                upload = _TarUpload(self._hub, request_id, path, special, self._umask)
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
            with self._lock:
                if request_id in self._open:
                    upload.write(data)
        except Exception as exc:  # answered once (errno kept); the rest is dropped
            self._drop(request_id)
            self._hub.fail(request_id, exc)

    def end(self, request_id: int) -> None:
        """PUT_END: complete an open upload (ignored if there is none)."""
        with self._lock:
            upload = self._open.pop(request_id, None)
        if upload is None:
            return
        try:
            upload.close(self._hub, request_id, self._umask)
        except Exception as exc:  # the rename or chmod failed (the file is discarded)
            upload.discard()
            self._hub.fail(request_id, exc)

    def _drop(self, request_id: int, wait: bool = False) -> None:
        """Forget an upload and discard what it wrote."""
        with self._lock:
            upload = self._open.pop(request_id, None)
            if upload is not None:
                upload.discard()
        if wait and isinstance(upload, _TarUpload):
            upload.join()  # at exit: its tree is removed before the process ends

    def discard_all(self) -> None:
        """Discard every open upload (at exit: no partial file or tree is left behind)."""
        for request_id in list(self._open):
            self._drop(request_id, wait=True)


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
