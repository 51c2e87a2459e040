"""File and folder transfer steps, in chunks over the agent's channel.

A file travels as raw chunks; a folder travels as one tar stream (many small files cost
one stream, not one round trip each). Both ends land what they receive all or nothing,
as :mod:`actorcluster.remote.agent.landing` describes: a file under a temporary name
renamed into place once complete, a folder extracted aside and moved (or merged, like
``scp -r``) into place once complete; on any failure the temporary file or folder is
removed and the target is left as it was. Modes: the sender's permission bits less the
receiver's umask; setuid, setgid and sticky bits only with ``preserve_special_bits``.
Symbolic links in a folder stay links and are never written through. Relative paths
on the host are under the runtime's working directory.

Errors are typed: a failure on either side is a
:class:`~actorcluster.errors.FileTransferError` carrying the OS error's ``errno``
(``ENOSPC`` for a full disk) where there was one; a lost host stays the
:class:`~actorcluster.errors.HostUnreachableError` it is.
"""

from __future__ import annotations

import errno
import os
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actorcluster._workers import THREADS
from actorcluster.errors import (
    ActorClusterError,
    FileTransferError,
    RemoteOperationError,
    RequestCancelledError,
)
from actorcluster.messages.events import StepOutput, TransferProgress
from actorcluster.remote.agent.landing import PartialFile, PartialTree, current_umask, file_mode
from actorcluster.steps import download_ledger
from actorcluster.steps.base import StepRun

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster._workers import Job
    from actorcluster.messages.steps import GetFile, SendFile
    from actorcluster.remote import Call, Upload, Written
    from actorcluster.steps.context import StepContext

__all__ = ["CHUNK", "Chunk", "GetRun", "SendRun", "remote_path"]

CHUNK = 1024 * 1024
"""Bytes per upload frame."""
_JOIN_TIMEOUT = 60.0
"""Seconds a download's extraction may take to finish once the stream ended."""


def remote_path(working_dir: str, path: str) -> str:
    """A host path: absolute and ``~`` paths as given, others under the working dir."""
    if path.startswith(("/", "~")):
        return path
    return posixpath.join(working_dir, path)


def _progress(context: StepContext, done: int, total: int | None) -> None:
    context.emit(TransferProgress(task=context.task, index=context.index, done=done, total=total))


def _log_line(context: StepContext, line: str) -> None:
    context.emit(StepOutput(task=context.task, index=context.index, fd=1, text=line + "\n"))


def _result(run: StepRun, call: Call[Any], path: str) -> Any:
    """``call``'s result; a failure on the host is a :class:`FileTransferError` with
    the host's reason and errno, a cancellation the task's."""
    try:
        return call.result(timeout=0)
    except RequestCancelledError:
        raise run.context.control.error() from None
    except RemoteOperationError as exc:
        raise FileTransferError(run.context.host, path, exc.reason, exc.errno) from None


def _local_error(host: str, path: str, error: BaseException) -> FileTransferError:
    """A local failure as a :class:`FileTransferError` (errno kept)."""
    code = error.errno if isinstance(error, OSError) else None
    return FileTransferError(host, path, str(error) or type(error).__name__, code)


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
            FileTransferError: the local path is missing or unreadable (with its errno).
            HostUnreachableError: the host or its agent was lost while sending (a send
                that makes no progress for the heartbeat timeout loses it).
            TaskCancelledError: the task was cancelled meanwhile.
        """
        context, local, step = self.context, self._local, self._step
        try:
            info = local.stat()
        except FileNotFoundError as exc:
            reason = "no such local file or folder"
            raise FileTransferError(context.host, str(local), reason, exc.errno) from None
        except OSError as exc:
            raise _local_error(context.host, str(local), exc) from exc
        folder = local.is_dir()
        self._target = remote_path(context.working_dir, step.remote_path or local.name)
        upload = context.client.upload(
            self._target,
            folder=folder,
            mode=None if folder else info.st_mode & 0o7777,
            name=local.name,
            special=step.preserve_special_bits,
        )
        writer = _ChunkWriter(context, upload, None if folder else info.st_size)
        try:
            if folder:
                _stream_tar(local, writer)
            else:
                _stream_file(local, writer, upload)
            writer.flush()
        except ActorClusterError:  # the host was lost, the task cancelled: typed already
            upload.abort()
            raise
        except OSError as exc:  # reading the local side failed
            upload.abort()
            raise _local_error(context.host, str(local), exc) from exc
        except BaseException:
            upload.abort()
            raise
        return upload.finish()

    def finish(self, call: Call[Any]) -> None:
        """Log what was sent.

        Raises:
            FileTransferError: the host could not write it (its reason and errno).
        """
        written = _result(self, call, self._target)
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
    """Fetches a file or a folder; either lands whole or not at all."""

    def __init__(
        self, context: StepContext, deliver: Callable[[object], None], step: GetFile
    ) -> None:
        super().__init__(context, deliver)
        self._step = step
        self._receiver = _Receiver(step, current_umask())

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
        """Move the file or folder into place and log it.

        Raises:
            FileTransferError: the remote path is missing, the host failed to read it,
                what arrived is incomplete, or the local write failed (with its errno).
        """
        context, step, receiver = self.context, self._step, self._receiver
        try:
            sent = _result(self, call, step.remote_path)
        except BaseException:
            receiver.close(ok=False)
            raise
        if receiver.error is None and receiver.target is None:
            receiver.error = OSError(errno.EIO, "the host sent nothing")
        elif receiver.error is None and sent != receiver.received:
            receiver.error = OSError(
                errno.EIO, f"incomplete: {receiver.received} of {sent} bytes arrived"
            )
        receiver.close(ok=True)
        if receiver.error is not None:
            raise _local_error(context.host, step.remote_path, receiver.error)
        line = f"fetched {step.remote_path} to {receiver.target} ({receiver.received} bytes)"
        _log_line(context, line)

    def abort(self) -> None:
        """Remove the partial download."""
        self._receiver.close(ok=False)


class _Receiver:
    """Writes a download's chunks to a local partial file or a partial tree's extraction.

    Chunks come in on the task actor's thread; a folder's tar stream goes through a
    pipe to a thread that extracts it aside. :meth:`close` lands it or drops it.
    """

    def __init__(self, step: GetFile, umask: int) -> None:
        self._step = step
        self._umask = umask
        self.error: BaseException | None = None
        self.received = 0
        self.target: Path | None = None
        self._kind = ""
        self._mode: int | None = None
        self._file: PartialFile | None = None
        self._tree: PartialTree | None = None
        self._pipe = -1
        self._extractor: Job | None = None

    def write(self, chunk: Chunk) -> None:
        """Take a chunk (after a failure, chunks are dropped)."""
        if self.error is not None:
            return
        try:
            if not self._kind:
                self._open(chunk.kind, chunk.mode)
            elif chunk.kind != self._kind:
                raise OSError(errno.EPROTO, f"a {chunk.kind} chunk in a {self._kind} download")
            self.received += len(chunk.data)
            if self._file is not None:
                self._file.write(chunk.data)
            elif self._pipe >= 0:
                _write_all(self._pipe, chunk.data)
        except BrokenPipeError:  # the extraction failed: it set the error
            self._close_pipe()
        except Exception as exc:  # reported after the request ends
            self.error = exc

    def _open(self, kind: str, mode: int | None) -> None:
        step = self._step
        name = posixpath.basename(step.remote_path.rstrip("/")) or "download"
        local = Path(step.local_path).expanduser() if step.local_path else Path.cwd() / name
        self._kind = kind
        download_ledger.sweep_once()
        if kind == "file":
            if local.is_dir():
                local = local / name
            self._file = PartialFile(str(local), download_ledger.note)
            self._mode = mode
        else:
            self._tree = tree = PartialTree(
                str(local),
                umask=self._umask,
                special=step.preserve_special_bits,
                notify=download_ledger.note,
            )
            reader, self._pipe = os.pipe()
            self._extractor = THREADS.start(self._extract, tree, reader, name="actorcluster-untar")
        self.target = local

    def _extract(self, tree: PartialTree, reader: int) -> None:
        with os.fdopen(reader, "rb") as stream:
            try:
                tree.extract(stream)
            except Exception as exc:  # the pipe closes: the writer drops the rest
                if self.error is None:
                    self.error = exc

    def _close_pipe(self) -> None:
        if self._pipe >= 0:
            pipe, self._pipe = self._pipe, -1
            os.close(pipe)

    def close(self, ok: bool) -> None:
        """Land what arrived if ``ok`` and nothing failed, else remove it (again is
        harmless). A failure to land it becomes :attr:`error`."""
        file, self._file = self._file, None
        tree, self._tree = self._tree, None
        if tree is not None:
            self._close_pipe()
            assert self._extractor is not None
            self._extractor.join(_JOIN_TIMEOUT)
            if self._extractor.is_alive() and self.error is None:
                self.error = TimeoutError(f"extraction still running after {_JOIN_TIMEOUT} s")
        landing = file or tree
        if landing is None:
            return
        if not ok or self.error is not None:
            landing.discard()
            return
        try:
            if file is not None:
                mode = file_mode(
                    self._mode, file.target, self._umask, special=self._step.preserve_special_bits
                )
                file.commit(mode)
            elif tree is not None:
                tree.commit()
        except OSError as exc:
            self.error = exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
