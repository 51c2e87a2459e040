"""The caller's fault: bad arguments, bad configuration."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError

__all__ = ["ConfigurationError", "UnknownProcessKeyError", "UsageError"]


class UsageError(ActorClusterError, ValueError):
    """An argument or a call was wrong; the message names what and why."""


class ConfigurationError(UsageError):
    """A connection setting, ssh_config entry or spec field is invalid."""


class UnknownProcessKeyError(UsageError, KeyError):
    """No process (task or port exposure) is known under this key.

    Args:
        key: the process key asked for.
        host: the runtime's host, if one.
    """

    def __init__(self, key: str, host: str = "") -> None:
        super().__init__(key, host)

    def __str__(self) -> str:
        key, host = self.args
        where = f" on runtime {host}" if host else ""
        return f"unknown process key {key!r}{where}"
