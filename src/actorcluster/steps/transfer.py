"""File and folder transfer steps, in chunks over the agent's channel.

A file travels as raw chunks and lands under a temporary name that is renamed into
place at the end, so a reader never sees half a file. A folder travels as one tar
stream (many small files cost one stream, not one round trip each).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from actorcluster.errors import FileTransferError
from actorcluster.messages.events import TransferProgress
from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from actorcluster.messages.steps import GetFile, SendFile
    from actorcluster.remote.agent.frames import Frame
    from actorcluster.remote.client import Request
    from actorcluster.steps.step_context import StepContext

__all__ = ["CHUNK", "get_file", "remote_path", "send_file"]

CHUNK = 1024 * 1024


def _remote_stat(context: StepContext, path: str) -> dict[str, Any] | None:
    frame = context.wait(context.client.submit(Kind.FS, {"op": "stat", "path": path}))
    if frame.kind != Kind.RESULT:
        return None
    value = frame.payload.get("value")
    return value if isinstance(value, dict) else None


def remote_path(context: StepContext, path: str) -> str:
    """A host path: absolute and ``~`` paths as given, others under the working dir."""
    if path.startswith(("/", "~")):
        return path
    return posixpath.join(context.working_dir, path)


def _send_target(context: StepContext, step: SendFile, local: Path) -> str:
    if step.remote_path is None or step.remote_path == "":
        return posixpath.join(context.working_dir, local.name)
    remote = remote_path(context, step.remote_path)
    if local.is_dir():
        return remote
    if remote.endswith("/"):
        return posixpath.join(remote, local.name)
    stat = _remote_stat(context, remote)
    return posixpath.join(remote, local.name) if stat and stat.get("is_dir") else remote


class _ChunkSender:
    """A write-only file object that sends PUT_CHUNK frames of up to CHUNK bytes."""

    def __init__(self, context: StepContext, request: Request, total: int | None) -> None:
        self._context = context
        self._request = request
        self._buffer = bytearray()
        self._total = total
        self.sent = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer and not self._request.future.done():
            self._context.control.check()
            data = bytes(self._buffer)
            self._context.client.send(Kind.PUT_CHUNK, self._request.request_id, {"data": data})
            self.sent += len(data)
            _progress(self._context, self.sent, self._total)
        self._buffer.clear()


def send_file(context: StepContext, step: SendFile) -> str:
    """Send a file or folder; return the log line.

    Raises:
        FileTransferError: the local path is missing or the host refused the write.
    """
    local = Path(step.local_path).expanduser()
    if not local.exists():
        raise FileTransferError(context.host, str(local), "no such local file or folder")
    target = _send_target(context, step, local)
    kind = "tar" if local.is_dir() else "file"
    mode = None if local.is_dir() else local.stat().st_mode & 0o7777
    request = context.client.submit(Kind.PUT, {"path": target, "kind": kind, "mode": mode})
    total = local.stat().st_size if kind == "file" else None
    sender = _ChunkSender(context, request, total)
    try:
        if kind == "file":
            _stream_file(local, sender, request)
        else:
            _stream_tar(local, sender)
        sender.flush()
    finally:
        if not request.future.done():
            context.client.send(Kind.PUT_END, request.request_id, {})
    frame = context.wait(request)
    if frame.kind != Kind.RESULT:
        raise FileTransferError(
            context.host, target, str(frame.payload.get("message", frame.payload))
        )
    return f"sent {local} to {target} ({sender.sent} bytes)"


def _stream_file(local: Path, sender: _ChunkSender, request: Request) -> None:
    with local.open("rb") as source:
        while not request.future.done():
            data = source.read(CHUNK)
            if not data:
                return
            sender.write(data)


def _stream_tar(local: Path, sender: _ChunkSender) -> None:
    with tarfile.open(fileobj=sender, mode="w|", bufsize=CHUNK) as archive:  # type: ignore[call-overload]
        for name in sorted(os.listdir(local)):
            archive.add(str(local / name), arcname=name)


def _progress(context: StepContext, done: int, total: int | None) -> None:
    context.emit(TransferProgress(task=context.task, index=context.index, done=done, total=total))


class _Receiver:
    """Writes DATA frames of a download to a local file or a tar extraction."""

    def __init__(self, context: StepContext, step: GetFile) -> None:
        self._context = context
        self._step = step
        self.error: BaseException | None = None
        self.received = 0
        self.target: Path | None = None
        self._file: IO[bytes] | None = None
        self._temp: str | None = None
        self._mode: int | None = None
        self._pipe_writer: int | None = None
        self._extractor: threading.Thread | None = None

    def on_frame(self, frame: Frame) -> None:
        if frame.kind != Kind.DATA or self.error is not None:
            return
        try:
            if self._file is None and self._pipe_writer is None:
                self._open(str(frame.payload.get("kind", "file")), frame.payload.get("mode"))
            data: bytes = frame.payload.get("data", b"")
            self.received += len(data)
            size = frame.payload.get("size")
            _progress(self._context, self.received, size if isinstance(size, int) else None)
            if self._file is not None:
                self._file.write(data)
            elif self._pipe_writer is not None:
                _write_all(self._pipe_writer, data)
        except Exception as exc:  # reported after the request ends
            self.error = exc

    def _open(self, kind: str, mode: Any) -> None:
        name = posixpath.basename(self._step.remote_path.rstrip("/")) or "download"
        local = Path(self._step.local_path) if self._step.local_path else Path.cwd() / name
        local = local.expanduser()
        if kind == "file":
            if local.is_dir():
                local = local / name
            local.parent.mkdir(parents=True, exist_ok=True)
            fd, self._temp = tempfile.mkstemp(prefix=f".{local.name}.", dir=local.parent)
            self._file = os.fdopen(fd, "wb")
            self._mode = int(mode) if isinstance(mode, int) else None
        else:
            local.mkdir(parents=True, exist_ok=True)
            reader, self._pipe_writer = os.pipe()
            self._extractor = threading.Thread(
                target=self._extract, args=(reader, local), name="actorcluster-untar", daemon=True
            )
            self._extractor.start()
        self.target = local

    def _extract(self, reader: int, destination: Path) -> None:
        with os.fdopen(reader, "rb") as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    if hasattr(tarfile, "data_filter"):
                        archive.extractall(destination, filter="data")
                    else:  # Python < 3.10.12 has no extraction filters
                        archive.extractall(destination)
            except Exception as exc:
                self.error = exc
            finally:
                while stream.read(CHUNK):  # drain so the writer never blocks
                    pass

    def finish(self, ok: bool) -> None:
        """Close the local side; on success move the file into place."""
        if self._file is not None:
            self._file.close()
            assert self._temp is not None and self.target is not None
            if ok and self.error is None:
                if self._mode is not None:
                    os.chmod(self._temp, self._mode)
                os.replace(self._temp, self.target)
            else:
                os.unlink(self._temp)
        if self._pipe_writer is not None:
            os.close(self._pipe_writer)
            assert self._extractor is not None
            self._extractor.join()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def get_file(context: StepContext, step: GetFile) -> str:
    """Fetch a file or folder; return the log line.

    Raises:
        FileTransferError: the remote path is missing or the local write failed.
    """
    receiver = _Receiver(context, step)
    path = remote_path(context, step.remote_path)
    request = context.client.submit(Kind.GET, {"path": path}, receiver.on_frame)
    try:
        frame = context.wait(request)
    except BaseException:
        receiver.finish(ok=False)
        raise
    ok = frame.kind == Kind.RESULT
    receiver.finish(ok)
    if not ok:
        message = str(frame.payload.get("message", frame.payload))
        raise FileTransferError(context.host, step.remote_path, message)
    if receiver.error is not None:
        raise FileTransferError(context.host, step.remote_path, str(receiver.error))
    return f"fetched {step.remote_path} to {receiver.target} ({receiver.received} bytes)"
