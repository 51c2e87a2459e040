"""Files and folders sent, fetched or created on a host."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError, RemoteError, _head

__all__ = ["FileTransferError", "PathCreationError"]


class FileTransferError(RemoteError, OSError):
    """A file or folder could not be sent or fetched (an :class:`OSError`).

    Args:
        host: the runtime's host.
        path: the file or folder.
        reason: what went wrong, in words.
        errno: the OS error number, if an OS error failed it.
    """

    def __init__(self, host: str, path: str, reason: str, errno: int | None = None) -> None:
        ActorClusterError.__init__(self, host, path, reason, errno)
        self.errno = errno
        self.strerror = reason
        self.filename = path

    def __str__(self) -> str:
        host, path, reason, _ = self.args
        return f"transfer of {path!r} with {host} failed: {_head(reason)}"


class PathCreationError(ActorClusterError):
    """A directory could not be created on a host.

    Args:
        path: the directory.
        host: the host it was to be created on ("" or None: not known).
        reason: why, in words.
    """

    def __init__(self, path: str, host: str | None = "", reason: str = "") -> None:
        super().__init__(path, host or "", reason)

    @property
    def path(self) -> str:
        """The path that could not be created."""
        return str(self.args[0])

    @property
    def host(self) -> str | None:
        """The host it was to be created on, None if not known."""
        return str(self.args[1]) or None

    def __str__(self) -> str:
        path, host, reason = self.args
        where = f" on {host}" if host else ""
        why = f": {reason}" if reason else ""
        return f"could not create directory {path!r}{where}{why}"
