"""File and folder transfer steps, in chunks over the agent's channel.

A file travels as raw chunks and lands under a temporary name that is renamed into
place at the end, so a reader never sees half a file; a folder travels as one tar
stream (many small files cost one stream, not one round trip each). Relative paths on
the host are under the runtime's working directory.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from actorcluster.errors import FileTransferError, TaskExecutionError
from actorcluster.messages.events import StepOutput, TransferProgress
from actorcluster.steps.base import StepRun

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.messages.steps import GetFile, SendFile
    from actorcluster.remote import Call, Upload, Written
    from actorcluster.steps.context import StepContext

__all__ = ["CHUNK", "Chunk", "GetRun", "SendRun", "remote_path"]

CHUNK = 1024 * 1024
"""Bytes per upload frame."""


def remote_path(working_dir: str, path: str) -> str:
    """A host path: absolute and ``~`` paths as given, others under the working dir."""
    if path.startswith(("/", "~")):
        return path
    return posixpath.join(working_dir, path)


def _progress(context: StepContext, done: int, total: int | None) -> None:
    context.emit(TransferProgress(task=context.task, index=context.index, done=done, total=total))


def _log_line(context: StepContext, line: str) -> None:
    context.emit(StepOutput(task=context.task, index=context.index, fd=1, text=line + "\n"))


class _ChunkWriter:
    """A write-only file object that sends what it is given as upload chunks."""

    def __init__(self, context: StepContext, upload: Upload, total: int | None) -> None:
        self._context = context
        self._upload = upload
        self._buffer = bytearray()
        self._total = total
        self.sent = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer and not self._upload.refused:
            self._context.control.check()
            data = bytes(self._buffer)
            self._upload.write(data)
            self.sent += len(data)
            _progress(self._context, self.sent, self._total)
        self._buffer.clear()


class SendRun(StepRun):
    """Sends a file or a folder (its content goes into the folder ``remote_path``).

    A file goes to ``remote_path``, or into it under its own name when that is a
    folder or ends with ``/``; None: the working directory, under the local name.
    """

    def __init__(self, context: StepContext, step: SendFile) -> None:
        super().__init__(context, lambda _: None)
        self._step = step
        self._local = Path(step.local_path).expanduser()
        self._target = ""

    def describe(self) -> str:
        """``send_file local -> remote``."""
        return self._step.describe()

    def start(self) -> Call[Written]:
        """Stream the file or folder to the host, then end the upload.

        Raises:
            FileTransferError: the local path is missing or unreadable.
            TaskCancelledError: the task was cancelled meanwhile.
        """
        context, local = self.context, self._local
        if not local.exists():
            raise FileTransferError(context.host, str(local), "no such local file or folder")
        given = self._step.remote_path
        folder = local.is_dir()
        self._target = remote_path(context.working_dir, given or local.name)
        mode = None if folder else local.stat().st_mode & 0o7777
        upload = context.client.upload(self._target, folder=folder, mode=mode, name=local.name)
        writer = _ChunkWriter(context, upload, None if folder else local.stat().st_size)
        try:
            if folder:
                _stream_tar(local, writer)
            else:
                _stream_file(local, writer, upload)
            writer.flush()
        except OSError as exc:
            upload.abort()
            raise FileTransferError(context.host, str(local), str(exc)) from exc
        except BaseException:
            upload.abort()
            raise
        return upload.finish()

    def finish(self, call: Call[Any]) -> None:
        """Log what was sent.

        Raises:
            FileTransferError: the host could not write it (its reason, errno's text).
        """
        try:
            written = self.outcome(call)
        except TaskExecutionError as exc:
            raise FileTransferError(self.context.host, self._target, exc.output) from None
        _log_line(self.context, f"sent {self._local} to {written.path} ({written.size} bytes)")


def _stream_file(local: Path, writer: _ChunkWriter, upload: Upload) -> None:
    with local.open("rb") as source:
        while not upload.refused:
            data = source.read(CHUNK)
            if not data:
                return
            writer.write(data)


def _stream_tar(local: Path, writer: _ChunkWriter) -> None:
    with tarfile.open(fileobj=writer, mode="w|", bufsize=CHUNK) as archive:  # type: ignore[call-overload]
        for name in sorted(os.listdir(local)):
            archive.add(str(local / name), arcname=name)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a download, on its way from the reader to the task actor."""

    data: bytes
    """The bytes."""
    kind: str
    """``"file"`` or ``"tar"``."""
    mode: int | None
    """A file's permission bits (first chunk only)."""


class GetRun(StepRun):
    """Fetches a file or a folder; a file lands atomically, a folder is extracted."""

    def __init__(
        self, context: StepContext, deliver: Callable[[object], None], step: GetFile
    ) -> None:
        super().__init__(context, deliver)
        self._step = step
        self._receiver = _Receiver(step)

    def describe(self) -> str:
        """``get_file remote -> local``."""
        return self._step.describe()

    def start(self) -> Call[int]:
        """Ask for the file or folder."""
        context = self.context
        path = remote_path(context.working_dir, self._step.remote_path)
        return context.client.download(
            path, lambda data, kind, mode: self.deliver(Chunk(data, kind, mode))
        )

    def feed(self, item: object) -> None:
        """Write a chunk."""
        if isinstance(item, Chunk):
            self._receiver.write(item)
            _progress(self.context, self._receiver.received, None)

    def finish(self, call: Call[Any]) -> None:
        """Move the file into place (or finish the extraction) and log it.

        Raises:
            FileTransferError: the remote path is missing, or the local write failed.
        """
        context, step, receiver = self.context, self._step, self._receiver
        try:
            self.outcome(call)
        except TaskExecutionError as exc:
            receiver.close(ok=False)
            raise FileTransferError(context.host, step.remote_path, exc.output) from None
        except BaseException:
            receiver.close(ok=False)
            raise
        receiver.close(ok=True)
        if receiver.error is not None:
            raise FileTransferError(context.host, step.remote_path, str(receiver.error))
        line = f"fetched {step.remote_path} to {receiver.target} ({receiver.received} bytes)"
        _log_line(context, line)

    def abort(self) -> None:
        """Remove the partial download."""
        self._receiver.close(ok=False)


class _Receiver:
    """Writes a download's chunks to a local temporary file or a tar extraction."""

    def __init__(self, step: GetFile) -> None:
        self._step = step
        self.error: BaseException | None = None
        self.received = 0
        self.target: Path | None = None
        self._file: IO[bytes] | None = None
        self._temp: str | None = None
        self._mode: int | None = None
        self._pipe_writer: int | None = None
        self._extractor: threading.Thread | None = None

    def write(self, chunk: Chunk) -> None:
        if self.error is not None:
            return
        try:
            if self._file is None and self._pipe_writer is None:
                self._open(chunk.kind, chunk.mode)
            self.received += len(chunk.data)
            if self._file is not None:
                self._file.write(chunk.data)
            elif self._pipe_writer is not None:
                _write_all(self._pipe_writer, chunk.data)
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

    def close(self, ok: bool) -> None:
        """Close the local side; on success move the file into place."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
            assert self._temp is not None and self.target is not None
            if ok and self.error is None:
                if self._mode is not None:
                    os.chmod(self._temp, self._mode)
                os.replace(self._temp, self.target)
            else:
                os.unlink(self._temp)
        if self._pipe_writer is not None:
            os.close(self._pipe_writer)
            self._pipe_writer = None
            assert self._extractor is not None
            self._extractor.join()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
