"""Reaching a host over SSH: resolving, connecting, authenticating, host keys."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError, RemoteError, _HostReasonError

__all__ = [
    "AuthenticationError",
    "ConnectionRefusedHostError",
    "HostKeyChangedError",
    "HostKeyError",
    "HostUnreachableError",
    "InvalidRuntimeError",
    "RevokedHostKeyError",
    "UnknownHostError",
    "UnknownHostKeyError",
]


class InvalidRuntimeError(_HostReasonError):
    """The host is not usable as a runtime (unreachable, or no usable python3).

    Args:
        host: the host that cannot be used.
        reason: why, in words.
    """

    _happened = "{host} is not a valid runtime"

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(host, reason)


class HostUnreachableError(RemoteError, _HostReasonError, ConnectionError):
    """A host could not be reached or was lost.

    Args:
        host: the runtime's host name.
        reason: what happened, in words.
    """

    _happened = "host {host} is unreachable"

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(host, reason)


class UnknownHostError(HostUnreachableError, InvalidRuntimeError, ValueError):
    """The host name does not resolve (also a ``ValueError``, as lazycluster raised)."""


class ConnectionRefusedHostError(HostUnreachableError, InvalidRuntimeError):
    """The host refused the TCP connection (no sshd listening)."""


class AuthenticationError(HostUnreachableError, InvalidRuntimeError):
    """No offered key or password was accepted by the host."""


class HostKeyError(HostUnreachableError, InvalidRuntimeError):
    """The host's key could not be verified.

    Args:
        host: the runtime's host.
        reason: why the key was rejected.
        known_hosts: the known_hosts file read, if one.
    """

    def __init__(self, host: str, reason: str = "", known_hosts: str = "") -> None:
        ActorClusterError.__init__(self, host, reason, known_hosts)

    def __str__(self) -> str:
        host, reason, known_hosts = self.args
        where = f" (known_hosts: {known_hosts})" if known_hosts else ""
        return f"host key of {host} rejected: {reason}{where}"


class UnknownHostKeyError(HostKeyError):
    """The host's key is not in known_hosts and trusting new keys was not asked for."""


class HostKeyChangedError(HostKeyError):
    """The host's key differs from the one in known_hosts: possible man in the middle."""


class RevokedHostKeyError(HostKeyError):
    """The host's key (or its certificate's CA) is marked ``@revoked`` in known_hosts."""
