"""The agent session on a host: starting it, losing it, its requests."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError, RemoteError, _head
from actorcluster.errors._connection import HostUnreachableError, InvalidRuntimeError

__all__ = [
    "AgentLostError",
    "AgentStartError",
    "ProtocolError",
    "PythonVersionMismatchError",
    "RemoteOperationError",
    "RequestCancelledError",
    "RequestTimeoutError",
]


class AgentStartError(RemoteError, InvalidRuntimeError):
    """The remote agent did not come up; the message carries what the host printed.

    Args:
        host: the runtime's host.
        reason: what happened, in words.
        output: what the host printed instead of the agent's marker.
    """

    def __init__(self, host: str, reason: str, output: str = "") -> None:
        ActorClusterError.__init__(self, host, reason, output)

    def __str__(self) -> str:
        host, reason, output = self.args
        tail = f"; host printed: {output[-2000:]!r}" if output else ""
        return f"agent on {host} did not start: {reason}{tail}"


class AgentLostError(HostUnreachableError):
    """The remote agent (or its connection) went away while a request was pending.

    Args:
        host: the runtime's host.
        reason: what happened, in words.
        kind: how it was lost: :attr:`SILENT` (no answer to heartbeats: a partition or
            a hung agent), :attr:`ENDED` (its stream ended), :attr:`BROKEN` (the stream
            or the protocol broke) or :attr:`CLOSED` (closed by the client).
    """

    SILENT = "silent"
    """No answer to heartbeats (or a send made no progress) for the timeout."""
    ENDED = "ended"
    """The agent's stream ended."""
    BROKEN = "broken"
    """The stream failed, or the agent broke the protocol."""
    CLOSED = "closed"
    """The client closed the session."""

    def __init__(self, host: str, reason: str = "", kind: str = "ended") -> None:
        ActorClusterError.__init__(self, host, reason, kind)

    @property
    def kind(self) -> str:
        """How it was lost (one of the class constants)."""
        return str(self.args[2])


class RequestTimeoutError(RemoteError, TimeoutError):
    """The agent did not answer a request in time (the request is cancelled).

    Args:
        host: the runtime's host.
        request: the request, in words.
        seconds: how long was waited.
    """

    def __init__(self, host: str, request: str, seconds: float) -> None:
        ActorClusterError.__init__(self, host, request, seconds)

    def __str__(self) -> str:
        host, request, seconds = self.args
        return f"{host} did not answer {request} within {seconds} s"


class ProtocolError(RemoteError):
    """A frame between client and agent was truncated, corrupt or unexpected."""


class RemoteOperationError(RemoteError):
    """An operation on a host (a file system call, a transfer, reading facts) failed there.

    Args:
        host: the runtime's host.
        operation: what was asked, in words.
        error_type: the exception's class name on the host.
        message: its message.
        errno: its errno, for OS errors; None otherwise.
    """

    def __init__(
        self, host: str, operation: str, error_type: str, message: str, errno: int | None = None
    ) -> None:
        super().__init__(host, operation, error_type, message, errno)

    @property
    def host(self) -> str:
        """The host where it failed."""
        return str(self.args[0])

    @property
    def error_type(self) -> str:
        """The exception's class name on the host."""
        return str(self.args[2])

    @property
    def errno(self) -> int | None:
        """The OS error number, if any."""
        return None if self.args[4] is None else int(self.args[4])

    @property
    def reason(self) -> str:
        """``error_type: message``, as the host raised it (cut to 4,000 characters)."""
        return f"{_head(self.args[2], 200)}: {_head(self.args[3])}"

    def __str__(self) -> str:
        host, operation, _, _, _ = self.args
        return f"{operation} on {host} failed: {self.reason}"


class RequestCancelledError(ActorClusterError):
    """A request to a host's agent was cancelled before it answered.

    Args:
        host: the runtime's host.
        request: the request, in words.
    """

    def __init__(self, host: str, request: str) -> None:
        super().__init__(host, request)

    def __str__(self) -> str:
        host, request = self.args
        return f"{request} on {host} was cancelled"


class PythonVersionMismatchError(RemoteError):
    """A function cannot run on a host whose agent runs another Python minor version.

    Args:
        host: the runtime's host.
        host_python: the version of the host's interpreter (``3.9.18``).
        client_python: this client's version (``3.11.7``).
        interpreter: the host's interpreter running the agent, if known.
    """

    def __init__(
        self, host: str, host_python: str, client_python: str, interpreter: str = ""
    ) -> None:
        super().__init__(host, host_python, client_python, interpreter)

    def __str__(self) -> str:
        host, host_python, client_python, interpreter = self.args
        wanted = ".".join(str(client_python).split(".")[:2])
        at = f" ({interpreter})" if interpreter else ""
        return (
            f"functions cannot run on {host}: its agent runs Python {host_python}{at}, this "
            f"client Python {client_python}, and a pickled function loads only on the same "
            f"minor version. Install Python {wanted} there (python{wanted} on PATH, or a "
            f"pyenv or uv install, is found and used by itself) or name it with "
            f'connection_kwargs={{"python": "/path/to/python{wanted}"}}'
        )
