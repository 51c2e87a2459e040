"""Resolving a host name into an :class:`SshTarget`: ssh_config first, then ssh_kwargs.

The ssh_config file is ``~/.ssh/config`` if it exists; the environment variable
``ACTORCLUSTER_SSH_CONFIG`` replaces that default and the ``ssh_config_path`` kwarg
replaces both. ``Include`` is followed as OpenSSH follows it
(:mod:`actorcluster.ssh.config_files`). Honoured: HostName, User, Port, IdentityFile,
IdentitiesOnly, ProxyJump, ConnectTimeout, ServerAliveInterval, and for host keys (see
:mod:`actorcluster.ssh.hostkeys`) UserKnownHostsFile, GlobalKnownHostsFile,
HostKeyAlias, CheckHostIP, HashKnownHosts and StrictHostKeyChecking (``accept-new``/``no``
trust new keys; a changed or revoked key is never accepted).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shlex
import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import ConfigurationError
from actorcluster.ssh.config_files import CONFIG_ENV_VAR, config_path, load_config
from actorcluster.ssh.options import SshOptions, parse_ssh_kwargs

if TYPE_CHECKING:
    from collections.abc import Mapping

    import paramiko

__all__ = ["CONFIG_ENV_VAR", "SshTarget", "resolve_target"]

log = get_logger(__name__)

_DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
_DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
_TOKEN = re.compile(r"%(.)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", re.DOTALL)
_MAX_JUMPS = 8
_ACCEPT_NEW = frozenset({"accept-new", "no", "off", "false"})


@dataclass(frozen=True, kw_only=True)
class SshTarget:
    """Everything needed to connect to one host; plain data.

    Secrets (``password``, ``passphrase``, ``pkey``) are left out of ``repr``; ``pkey``
    is also left out of equality. A target holding a ``pkey`` pickles only if the key
    object does.
    """

    alias: str
    """The host as the user wrote it (the ssh_config ``Host`` name)."""
    hostname: str
    """The name or address actually connected to."""
    port: int = 22
    """sshd's TCP port."""
    user: str
    """Login user."""
    identity_files: tuple[str, ...] = ()
    """Private key files to offer, in order (missing ones are skipped)."""
    known_hosts_files: tuple[str, ...] = ()
    """The user's known_hosts files (UserKnownHostsFile); new keys go to the first."""
    global_known_hosts_files: tuple[str, ...] = ()
    """System-wide known_hosts files (GlobalKnownHostsFile), read after the user's."""
    accept_new_host_keys: bool = False
    """Trust (and record) the key of a host that has no key on record."""
    host_key_alias: str | None = None
    """The name host keys are looked up and recorded under instead of ``hostname``."""
    check_host_ip: bool = False
    """Also check the key recorded for the server's IP address (CheckHostIP)."""
    hash_known_hosts: bool = False
    """Record new keys under hashed names (HashKnownHosts)."""
    connect_timeout: float = 10.0
    """Seconds for the TCP connect and the SSH key exchange."""
    server_alive_interval: float = 5.0
    """Seconds between keepalive messages; 0 turns them off."""
    proxy_jump: SshTarget | None = None
    """The jump host to tunnel through, itself a target (which may have its own)."""
    password: str | None = field(default=None, repr=False)
    """Password for password authentication."""
    passphrase: str | None = field(default=None, repr=False)
    """Passphrase that decrypts the key files."""
    pkey: paramiko.PKey | None = field(default=None, repr=False, compare=False)
    """An in-memory private key, offered first."""
    allow_agent: bool = True
    """Offer the keys of a running ssh-agent."""
    look_for_keys: bool = True
    """Offer ``~/.ssh/id_*`` keys."""
    banner_timeout: float = 10.0
    """Seconds to wait for the server's SSH banner."""
    auth_timeout: float = 15.0
    """Seconds to wait for an authentication answer."""
    channel_timeout: float = 10.0
    """Seconds to wait for a channel to open."""
    ssh_config_file: str | None = None
    """The ssh_config file the target was resolved through (None: there was none)."""

    @property
    def address(self) -> str:
        """``hostname:port`` (bracketed for IPv6), for messages."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{host}:{self.port}"


def resolve_target(host: str, ssh_kwargs: Mapping[str, Any] | None = None) -> SshTarget:
    """Resolve ``host`` through ssh_config, then apply ``ssh_kwargs`` on top.

    Args:
        host: a host name or ssh_config alias; fabric's ``user@host:port`` shorthand
            works too (the alias is then ``host``).
        ssh_kwargs: lazycluster's ``connection_kwargs`` plus actorcluster's keys (see
            :mod:`actorcluster.ssh.options`).

    Raises:
        ConfigurationError: a bad key or value in ``ssh_kwargs``, a user or port given
            both in ``host`` and in ``ssh_kwargs``, an unreadable or invalid ssh_config,
            or a ProxyJump loop.
    """
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise ConfigurationError(f"invalid host {host!r}: expected a host name")
    options = parse_ssh_kwargs(ssh_kwargs)
    user, name, port = _parse_host(host)
    for key, short, given in (("user", user, options.user), ("port", port, options.port)):
        if short is not None and given is not None:
            raise ConfigurationError(f"invalid host {host!r}: {key} given here and in ssh_kwargs")
    options = replace(options, user=options.user or user, port=options.port or port)
    config = load_config(options.ssh_config_path)
    target = _resolve(config, name, options, via=None, chain=())
    return replace(target, ssh_config_file=config_path(options.ssh_config_path)[0])


def _lookup(config: paramiko.SSHConfig, host: str) -> dict[str, Any]:
    try:
        return dict(config.lookup(host))
    except Exception as exc:  # Match exec, canonicalisation: anything paramiko raises
        raise ConfigurationError(f"ssh_config lookup of {host!r} failed: {exc}") from exc


def _number(entry: dict[str, Any], key: str, host: str) -> float | None:
    raw = entry.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (key == "port" and not (value.is_integer() and 1 <= value <= 65535)):
        raise ConfigurationError(f"ssh_config for {host!r}: invalid {key} {raw!r}")
    return value


def _flag(entry: dict[str, Any], key: str, default: bool, host: str) -> bool:
    value = str(entry.get(key, "yes" if default else "no")).lower()
    if value not in ("yes", "no", "true", "false"):
        raise ConfigurationError(f"ssh_config for {host!r}: invalid {key} {value!r}")
    return value in ("yes", "true")


def _file_list(raw: str, key: str, host: str) -> tuple[str, ...]:
    """A whitespace-separated (quotes allowed) list of files; ``none`` means no file."""
    try:
        files = tuple(shlex.split(raw))
    except ValueError as exc:
        raise ConfigurationError(f"ssh_config for {host!r}: invalid {key} {raw!r}") from exc
    if files and files[0].lower() == "none":
        if len(files) > 1:
            raise ConfigurationError(f"ssh_config for {host!r}: {key} none with other files")
        return ()
    return files


def _expand_tokens(path: str, tokens: Mapping[str, str], host: str) -> str:
    """Expand ``%x`` tokens and ``${VAR}`` in a UserKnownHostsFile path, as ssh does."""

    def one(match: re.Match[str]) -> str:
        letter, variable = match.group(1), match.group(2)
        if variable is not None:
            if variable not in os.environ:
                raise ConfigurationError(
                    f"ssh_config for {host!r}: UserKnownHostsFile {path!r} uses "
                    f"${{{variable}}}, which is not set"
                )
            return os.environ[variable]
        if letter not in tokens:
            raise ConfigurationError(
                f"ssh_config for {host!r}: UserKnownHostsFile {path!r} has unknown token %{letter}"
            )
        return tokens[letter]

    return _TOKEN.sub(one, path)


def _path_tokens(
    host: str, hostname: str, port: int, user: str, alias: str | None
) -> dict[str, str]:
    """The values of ssh_config's path tokens for this connection."""
    local = socket.gethostname()
    seed = f"{local}{hostname}{port}{user}".encode()
    digest = hashlib.sha1(seed).hexdigest()  # %C names a connection; SHA-1 is what ssh uses
    return {
        "%": "%",
        "C": digest,
        "d": os.path.expanduser("~"),
        "h": hostname,
        "i": str(os.getuid()),
        "k": alias or host,
        "L": local.split(".")[0],
        "l": local,
        "n": host,
        "p": str(port),
        "r": user,
        "u": getpass.getuser(),
    }


def _known_hosts(
    entry: dict[str, Any], options: SshOptions, host: str, tokens: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user and the global known_hosts files: ``known_hosts`` kwarg, else ssh_config."""
    if options.known_hosts is not None:
        user = tuple(os.path.expanduser(f) for f in options.known_hosts)
    else:
        raw = entry.get("userknownhostsfile")
        files = _DEFAULT_KNOWN_HOSTS if raw is None else _file_list(raw, "UserKnownHostsFile", host)
        user = tuple(_expand_tokens(os.path.expanduser(f), tokens, host) for f in files)
    raw = entry.get("globalknownhostsfile")
    system = (
        _DEFAULT_GLOBAL_KNOWN_HOSTS
        if raw is None
        else _file_list(raw, "GlobalKnownHostsFile", host)
    )
    return user, system


def _resolve(
    config: paramiko.SSHConfig,
    host: str,
    options: SshOptions,
    via: SshTarget | None,
    chain: tuple[str, ...],
) -> SshTarget:
    """Resolve one host; ``via`` is a jump already chosen by a ProxyJump list."""
    if host in chain or len(chain) > _MAX_JUMPS:
        raise ConfigurationError(f"ProxyJump loop: {' -> '.join((*chain, host))}")
    entry = _lookup(config, host)
    identities_only = str(entry.get("identitiesonly", "no")).lower() == "yes"
    strict = str(entry.get("stricthostkeychecking", "yes")).lower()
    connect_timeout = options.connect_timeout or _number(entry, "connecttimeout", host) or 10.0
    alive = _number(entry, "serveraliveinterval", host)
    key_files = (*options.key_filenames, *entry.get("identityfile", ()))
    hostname = str(entry.get("hostname", host))
    port = options.port or int(_number(entry, "port", host) or 22)
    user = options.user or str(entry.get("user") or getpass.getuser())
    alias = str(entry["hostkeyalias"]) if entry.get("hostkeyalias") else None
    tokens = _path_tokens(host, hostname, port, user, alias)
    user_files, global_files = _known_hosts(entry, options, host, tokens)
    target = SshTarget(
        alias=host,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=tuple(dict.fromkeys(os.path.expanduser(f) for f in key_files)),
        known_hosts_files=user_files,
        global_known_hosts_files=global_files,
        accept_new_host_keys=_pick(options.accept_new_host_keys, strict in _ACCEPT_NEW),
        host_key_alias=alias,
        check_host_ip=_flag(entry, "checkhostip", False, host),
        hash_known_hosts=_flag(entry, "hashknownhosts", False, host),
        connect_timeout=connect_timeout,
        server_alive_interval=5.0 if alive is None else alive,
        password=options.password,
        passphrase=options.passphrase,
        pkey=options.pkey,
        allow_agent=_pick(options.allow_agent, not identities_only),
        look_for_keys=_pick(options.look_for_keys, not identities_only),
        banner_timeout=options.banner_timeout or connect_timeout,
        auth_timeout=options.auth_timeout or 15.0,
        channel_timeout=options.channel_timeout or 10.0,
    )
    if via is None:
        spec = options.gateway or entry.get("proxyjump")
        via = _resolve_jumps(config, spec, host, options, (*chain, host))
    return replace(target, proxy_jump=via)


def _pick(given: bool | None, default: bool) -> bool:
    return default if given is None else given


def _resolve_jumps(
    config: paramiko.SSHConfig,
    spec: str | None,
    host: str,
    options: SshOptions,
    chain: tuple[str, ...],
) -> SshTarget | None:
    """Resolve a ProxyJump list ``a,b``: ``a`` as configured, then ``b`` via ``a``."""
    if not spec or spec.strip().lower() == "none":
        return None
    via: SshTarget | None = None
    for hop in (h.strip() for h in spec.split(",")):
        user, hop_host, port = _parse_host(hop)
        if hop_host == host and via is None:  # `Host * / ProxyJump bastion` reaches bastion
            log.debug("ssh.config.self_jump_ignored", host=host)
            return None
        hop_options = SshOptions(
            user=user,
            port=port,
            key_filenames=options.key_filenames,
            pkey=options.pkey,
            passphrase=options.passphrase,
            known_hosts=options.known_hosts,
            accept_new_host_keys=options.accept_new_host_keys,
        )
        if via is None:
            via = _resolve(config, hop_host, hop_options, None, chain)
        else:
            via = _resolve(config, hop_host, hop_options, via, (*chain, *_aliases(via)))
    return via


def _aliases(target: SshTarget | None) -> tuple[str, ...]:
    return () if target is None else (*_aliases(target.proxy_jump), target.alias)


def _parse_host(hop: str) -> tuple[str | None, str, int | None]:
    """Split ``[ssh://][user@]host[:port]`` (``[v6addr]:port`` too)."""
    rest = hop.removeprefix("ssh://")
    user, _, rest = rest.rpartition("@")
    port: str | None = None
    if rest.startswith("["):
        rest, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":") or None
    elif rest.count(":") == 1:
        rest, port = rest.split(":")
    if not rest or (port is not None and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise ConfigurationError(f"invalid host {hop!r}: expected [user@]host[:port]")
    return user or None, rest, None if port is None else int(port)
