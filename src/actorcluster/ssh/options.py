"""Checking ``ssh_kwargs``: lazycluster's ``connection_kwargs`` plus ours.

lazycluster handed its ``connection_kwargs`` to fabric as ``connect_kwargs``, i.e. as
the arguments of paramiko's ``SSHClient.connect()``; so those are accepted at the top
level: ``key_filename``, ``pkey``, ``password``, ``passphrase``, ``look_for_keys``,
``allow_agent``, ``timeout``, ``banner_timeout``, ``auth_timeout``, ``channel_timeout``,
``username``, ``compress`` (accepted, ignored) and ``gss_auth``, ``gss_kex``,
``gss_deleg_creds``, ``gss_trust_dns`` (accepted when False: GSSAPI is not supported).
fabric ``Connection``'s own keys are accepted too: ``user``, ``port``,
``connect_timeout``, ``connect_kwargs`` (a dict of the paramiko keys above),
``gateway`` and ``forward_agent`` (accepted, ignored); and ours: ``ssh_config_path``,
``known_hosts`` and ``accept_new_host_keys``.

``None`` as a value means "not given". The same setting given twice (``user`` and
``username``, ``connect_timeout`` and ``timeout``, a key at the top and in
``connect_kwargs``) must agree. Anything else raises
:class:`~actorcluster.errors.ConfigurationError` naming the key and the value (secrets
are never shown): paramiko's arguments actorcluster cannot honour (``sock``,
``disabled_algorithms``, ``gss_host``, ...) say why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import paramiko

from actorcluster._logging import get_logger
from actorcluster.errors import ConfigurationError

__all__ = ["SshOptions", "parse_ssh_kwargs"]

log = get_logger(__name__)

_SECRETS = frozenset({"password", "passphrase", "pkey"})


@dataclass(frozen=True, kw_only=True)
class SshOptions:
    """The ``ssh_kwargs`` a caller gave, checked and normalised (None: not given)."""

    user: str | None = None
    """Login user."""
    port: int | None = None
    """TCP port of sshd."""
    connect_timeout: float | None = None
    """Seconds for the TCP connect and the SSH handshake."""
    key_filenames: tuple[str, ...] = ()
    """Private key files to offer, before the ssh_config IdentityFiles."""
    pkey: paramiko.PKey | None = field(default=None, repr=False, compare=False)
    """An in-memory private key to offer first."""
    password: str | None = field(default=None, repr=False)
    """Password for password authentication (and, if no passphrase, key decryption)."""
    passphrase: str | None = field(default=None, repr=False)
    """Passphrase that decrypts the key files."""
    look_for_keys: bool | None = None
    """Whether to try ``~/.ssh/id_*``."""
    allow_agent: bool | None = None
    """Whether to try the keys of a running ssh-agent."""
    banner_timeout: float | None = None
    """Seconds to wait for the server's SSH banner."""
    auth_timeout: float | None = None
    """Seconds to wait for an authentication answer."""
    channel_timeout: float | None = None
    """Seconds to wait for a channel to open."""
    gateway: str | None = None
    """A jump host, written as for ProxyJump; overrides the ssh_config ProxyJump."""
    ssh_config_path: str | None = None
    """The ssh_config file to read instead of the default."""
    known_hosts: tuple[str, ...] | None = None
    """known_hosts files, instead of UserKnownHostsFile / ``~/.ssh/known_hosts``."""
    accept_new_host_keys: bool | None = None
    """Whether to trust and record keys of hosts not in known_hosts."""


def _fail(key: str, value: Any, why: str) -> NoReturn:
    shown = "<redacted>" if key.rpartition(".")[2] in _SECRETS else repr(value)
    raise ConfigurationError(f"invalid ssh setting {key}={shown}: {why}")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(key, value, "expected a non-empty string")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(key, value, "expected True or False")
    return value


def _port(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        _fail(key, value, "expected an int port in 1..65535")
    return value


def _seconds(key: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value <= 86400:
        _fail(key, value, "expected a number of seconds in (0, 86400]")
    return float(value)


def _path(key: str, value: Any) -> str:
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str) or not path.strip():
        _fail(key, value, "expected a path (str or os.PathLike)")
    return path


def _paths(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        return (_path(key, value),)
    if not isinstance(value, (list, tuple)) or not value:
        _fail(key, value, "expected a path or a non-empty list of paths")
    return tuple(_path(key, item) for item in value)


def _pkey(key: str, value: Any) -> paramiko.PKey:
    if not isinstance(value, paramiko.PKey):
        _fail(key, value, "expected a paramiko.PKey")
    return value


def _ignored(key: str, value: Any) -> None:
    _flag(key, value)
    log.debug("ssh.option.ignored", key=key, value=value)


def _gss_off(key: str, value: Any) -> None:
    if _flag(key, value):
        _fail(key, value, "GSSAPI (Kerberos) is not supported; log in with a key or a password")


def _unsupported(why: str) -> _Check:
    def check(key: str, value: Any) -> NoReturn:
        _fail(key, value, f"paramiko's connect() takes it, actorcluster does not: {why}")

    return check


_Check = Callable[[str, Any], Any]

_CONNECT_KWARGS: dict[str, tuple[str, _Check]] = {
    "key_filename": ("key_filenames", _paths),
    "pkey": ("pkey", _pkey),
    "password": ("password", _text),
    "passphrase": ("passphrase", _text),
    "look_for_keys": ("look_for_keys", _flag),
    "allow_agent": ("allow_agent", _flag),
    "banner_timeout": ("banner_timeout", _seconds),
    "auth_timeout": ("auth_timeout", _seconds),
    "channel_timeout": ("channel_timeout", _seconds),
    "timeout": ("connect_timeout", _seconds),
    "username": ("user", _text),
    "compress": ("", _ignored),
    "gss_auth": ("", _gss_off),
    "gss_kex": ("", _gss_off),
    "gss_deleg_creds": ("", _gss_off),
    "gss_trust_dns": ("", _gss_off),
    "gss_host": ("", _unsupported("GSSAPI (Kerberos) is not supported")),
    "sock": ("", _unsupported("give a jump host as gateway (or ProxyJump in ssh_config)")),
    "disabled_algorithms": ("", _unsupported("the algorithms are paramiko's defaults")),
    "transport_factory": ("", _unsupported("the transport is actorcluster's own")),
    "auth_strategy": ("", _unsupported("give keys, a password or an ssh-agent instead")),
}
"""paramiko ``connect()`` arguments: fabric's ``connect_kwargs``, and lazycluster's
``connection_kwargs`` at the top level."""

_TOP_LEVEL: dict[str, tuple[str, _Check]] = {
    "user": ("user", _text),
    "port": ("port", _port),
    "connect_timeout": ("connect_timeout", _seconds),
    "gateway": ("gateway", _text),
    "forward_agent": ("", _ignored),
    "ssh_config_path": ("ssh_config_path", _path),
    "known_hosts": ("known_hosts", _paths),
    "accept_new_host_keys": ("accept_new_host_keys", _flag),
}


def _collect(
    given: Mapping[Any, Any],
    table: dict[str, tuple[str, _Check]],
    prefix: str,
    fields: dict[str, tuple[str, Any]],
    also_accepted: Collection[str] = (),
) -> None:
    """Check each key of ``given`` against ``table``; add the field values to
    ``fields`` (field name -> (key it came from, value)), which must agree with any
    value already there."""
    for key, value in given.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or key not in table:
            keys = set(table) if prefix else {*table, *also_accepted, "connect_kwargs"}
            _fail(name, value, f"unknown key; accepted keys: {', '.join(sorted(keys))}")
        if value is None:
            continue
        attr, check = table[key]
        checked = check(name, value)
        if not attr:
            continue
        earlier = fields.get(attr)
        if earlier is not None and earlier[1] != checked:
            _fail(name, value, f"conflicts with {earlier[0]}")
        fields[attr] = (name, checked)


def parse_ssh_kwargs(
    ssh_kwargs: Mapping[str, Any] | None, also_accepted: Collection[str] = ()
) -> SshOptions:
    """Check ``ssh_kwargs`` and return them as :class:`SshOptions`.

    Args:
        ssh_kwargs: lazycluster's ``connection_kwargs`` plus actorcluster's keys, or None.
        also_accepted: keys taken elsewhere (the runtime's own, such as ``python``),
            named with the others when a key is unknown.

    Raises:
        ConfigurationError: an unknown key, or a value of the wrong type or range.
    """
    if ssh_kwargs is None:
        return SshOptions()
    if not isinstance(ssh_kwargs, Mapping):
        _fail("ssh_kwargs", ssh_kwargs, "expected a dict")
    fields: dict[str, tuple[str, Any]] = {}
    top = {k: v for k, v in ssh_kwargs.items() if k != "connect_kwargs"}
    _collect(top, {**_TOP_LEVEL, **_CONNECT_KWARGS}, "", fields, also_accepted)
    nested = ssh_kwargs.get("connect_kwargs")
    if nested is not None:
        if not isinstance(nested, Mapping):
            _fail("connect_kwargs", nested, "expected a dict")
        _collect(nested, _CONNECT_KWARGS, "connect_kwargs.", fields)
    return SshOptions(**{attr: value for attr, (_, value) in fields.items()})
