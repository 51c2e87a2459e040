"""Where ``RuntimeTask.execute(connection)`` runs: a host name, or a fabric ``Connection``.

A fabric ``Connection`` resolves its host through ssh_config itself: ``host`` is the
resolved HostName, ``original_host`` the name it was given. The runtime for it is
started with the given name (so ssh_config and the known_hosts check see the same host
as ``cxn.run`` does), the user, port, timeouts and ``connect_kwargs`` fabric settled on,
and the ssh_config file it was told to read.
"""

from __future__ import annotations

import contextlib
from typing import Any

from actorcluster.errors import UsageError

__all__ = ["HOME", "connection_target"]

HOME = "~"
"""The working directory of a standalone execution: the login's home, as fabric's."""


def _fabric_alias(connection: Any) -> str | None:
    """The host name a fabric ``Connection`` was given (its ssh_config alias, without
    ``user@`` and ``:port``); ``host`` is the HostName it resolved to."""
    original = getattr(connection, "original_host", None)
    if not isinstance(original, str) or not original.strip():
        return None
    alias = original.rpartition("@")[2]
    if alias.startswith("[") and "]" in alias:
        return alias[1 : alias.index("]")]
    return alias.split(":", 1)[0] if alias.count(":") == 1 else alias


def _fabric_ssh_config(connection: Any) -> str | None:
    """The ssh_config file a fabric ``Connection`` was told to read, if one."""
    config = getattr(connection, "config", None)
    path = getattr(config, "_runtime_ssh_path", None)
    if path is None and config is not None:
        with contextlib.suppress(Exception):  # fabric's Config is a dict-like; others may not be
            path = config.get("ssh_config_path")
    return path if isinstance(path, str) and path else None


def connection_target(connection: Any) -> tuple[str, dict[str, Any] | None]:
    """The host and ``connection_kwargs`` of a runtime for ``connection``: a host
    name, or a fabric ``Connection`` (see :meth:`RuntimeTask.execute`).

    Raises:
        UsageError: ``connection`` is neither.
    """
    if isinstance(connection, str) and connection.strip():
        return connection, None
    host = _fabric_alias(connection) or getattr(connection, "host", None)
    if not isinstance(host, str) or not host:
        raise UsageError(
            f"connection must be a Runtime, a host name or a fabric Connection, not {connection!r}"
        )
    kwargs: dict[str, Any] = {}
    for name in ("user", "port", "connect_timeout"):
        value = getattr(connection, name, None)
        if value is not None:
            kwargs[name] = value
    connect_kwargs = getattr(connection, "connect_kwargs", None)
    if connect_kwargs:
        kwargs["connect_kwargs"] = dict(connect_kwargs)
    ssh_config = _fabric_ssh_config(connection)
    if ssh_config is not None:
        kwargs["ssh_config_path"] = ssh_config
    return host, kwargs or None
