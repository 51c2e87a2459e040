"""Turning ``Runtime(host, working_dir, connection_kwargs)`` into validated options."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from actorcluster._limits import MAX_MODULE_SIZE_ALLOWED as _MAX_MODULE_SIZE
from actorcluster.actors.context import LOCALHOST, RuntimeOptions
from actorcluster.errors import ConfigurationError, UsageError
from actorcluster.remote.module_lookup import valid_module_name

__all__ = ["RUNTIME_KWARGS", "build_options"]

RUNTIME_KWARGS: dict[str, str] = {
    "python": "the interpreter on the host (default: the client's python3.X on PATH or in "
    "pyenv or uv, else python3)",
    "shell": "the shell commands run through (default: the user's login shell)",
    "agent_start_timeout": "seconds the agent gets to start",
    "heartbeat_interval": "seconds between pings to the agent",
    "heartbeat_timeout": "seconds of silence after which the host counts as lost",
    "reconnect_wait": "seconds a call waits for a reconnect under way",
    "session_grace": "seconds the host keeps a session (its processes) for a reconnect",
    "ship_modules": "send pure-Python modules a function needs and the host lacks (default True)",
    "ship_modules_exclude": "module names never sent to the host (their submodules neither)",
    "ship_modules_max_size": "bytes of source a module sent to the host may have (default 4 MiB)",
    "ship_modules_prefer_client": "use the client's copy of a module even where the host has one",
    "max_return_size": "bytes a function's return value may take once loaded (default 16 MiB)",
}
"""Keys of ``connection_kwargs`` that configure the runtime rather than SSH."""

_SECONDS = (
    "agent_start_timeout",
    "heartbeat_interval",
    "heartbeat_timeout",
    "reconnect_wait",
    "session_grace",
)


_FLAGS = ("ship_modules", "ship_modules_prefer_client")

_MAX_SECONDS = 86400.0
_MAX_HOST = 1025
"""The longest host name or alias (a DNS name is at most 253 characters)."""


def _module_names(value: Any) -> tuple[str, ...]:
    """``ship_modules_exclude``: a list of dotted module names."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(
        valid_module_name(item) for item in items
    ):
        raise ConfigurationError(
            "connection_kwargs['ship_modules_exclude'] must be a list of module names "
            f"(like 'my_utils' or 'my_pkg.secrets'), not {value!r}"
        )
    return tuple(sorted(items))


def _runtime_value(key: str, value: Any) -> Any:
    if key in _FLAGS:
        if not isinstance(value, bool):
            raise ConfigurationError(
                f"connection_kwargs[{key!r}] must be True or False, not {value!r}"
            )
        return value
    if key == "ship_modules_exclude":
        return _module_names(value)
    if key == "max_return_size":
        number = isinstance(value, int) and not isinstance(value, bool)
        if not number or value <= 0:
            raise ConfigurationError(
                f"connection_kwargs[{key!r}] must be a positive number of bytes, not {value!r}"
            )
        return value
    if key == "ship_modules_max_size":
        number = isinstance(value, int) and not isinstance(value, bool)
        if not number or not 0 < value <= _MAX_MODULE_SIZE:
            raise ConfigurationError(
                f"connection_kwargs[{key!r}] must be a number of bytes in (0, {_MAX_MODULE_SIZE}], "
                f"not {value!r}"
            )
        return value
    if key in _SECONDS:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 < value <= _MAX_SECONDS:
            raise ConfigurationError(
                f"connection_kwargs[{key!r}] must be a number of seconds in (0, 86400], "
                f"not {value!r}"
            )
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"connection_kwargs[{key!r}] must be a non-empty string, not {value!r}"
        )
    return value


_PATH_KEYS = ("ssh_config_path", "known_hosts", "key_filename")
"""Connection settings that name files: made absolute for the keeper (it works in ``/``)."""


def _absolute(value: Any) -> Any:
    if isinstance(value, str) and not value.startswith("~"):
        return os.path.abspath(value)
    if isinstance(value, (list, tuple)):
        return [_absolute(item) for item in value]
    return value


def _keeper_kwargs(ssh_kwargs: dict[str, Any]) -> str | None:
    """``ssh_kwargs`` as the keeper gets them (JSON, relative file names made absolute);
    None when they are not plain data (a key object)."""
    given = dict(ssh_kwargs)
    nested = given.get("connect_kwargs")
    if isinstance(nested, Mapping):
        given["connect_kwargs"] = dict(nested)
    for settings in (given, given.get("connect_kwargs")):
        if isinstance(settings, dict):
            for key in _PATH_KEYS:
                if key in settings:
                    settings[key] = _absolute(settings[key])
    try:
        return json.dumps(given, sort_keys=True)
    except (TypeError, ValueError):  # a key object, bytes: they stay here
        return None


def build_options(
    host: str,
    working_dir: str | None,
    connection_kwargs: Mapping[str, Any] | None,
    *,
    keeper: bool = False,
) -> RuntimeOptions:
    """Validate the constructor's arguments and resolve the host (``keeper``: the
    connection is to be the user's keeper's; ignored for ``localhost``).

    Raises:
        UsageError: ``host`` or ``working_dir`` is not a non-empty string.
        ConfigurationError: a connection kwarg is unknown or has a bad value.
    """
    if not isinstance(host, str) or not host.strip():
        raise UsageError(f"host must be a non-empty string, not {host!r}")
    if len(host) > _MAX_HOST or not host.isprintable() or any(c.isspace() for c in host):
        raise UsageError(
            f"host {host[:60]!r}{'...' if len(host) > 60 else ''} is not a host name or "
            f"SSH alias: it must be printable, without spaces, at most {_MAX_HOST} characters"
        )
    if working_dir is not None and (not isinstance(working_dir, str) or not working_dir.strip()):
        raise UsageError(f"working_dir must be a non-empty string or None, not {working_dir!r}")
    if connection_kwargs is not None and not isinstance(connection_kwargs, Mapping):
        raise ConfigurationError(
            f"connection_kwargs must be a dict, not {type(connection_kwargs).__name__}"
        )
    given = dict(connection_kwargs or {})
    runtime = {
        key: _runtime_value(key, given.pop(key)) for key in list(given) if key in RUNTIME_KWARGS
    }
    from actorcluster.ssh import parse_ssh_kwargs, resolve_target

    # Unknown keys and bad values first, the error naming every accepted key.
    parse_ssh_kwargs(given, also_accepted=RUNTIME_KWARGS)
    target = None if host == LOCALHOST else resolve_target(host, given)
    if not isinstance(keeper, bool):
        raise UsageError(f"keeper must be True or False, not {keeper!r}")
    if keeper and target is not None:
        runtime["keeper"] = True
        runtime["keeper_kwargs"] = _keeper_kwargs(given)
    return RuntimeOptions(host=host, target=target, working_dir=working_dir, **runtime)
