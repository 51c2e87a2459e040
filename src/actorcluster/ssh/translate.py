"""paramiko and socket errors, translated once into :mod:`actorcluster.errors` types.

Modelled on httpcore's ``_exceptions.map_exceptions``: code that talks to paramiko
runs inside :func:`ssh_errors`, and what escapes it is an
:class:`~actorcluster.errors.ActorClusterError` whose ``__cause__`` is the original.
"""

from __future__ import annotations

import difflib
import os
import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING

import paramiko

from actorcluster.errors import (
    ActorClusterError,
    AuthenticationError,
    ConnectionRefusedHostError,
    HostUnreachableError,
    UnknownHostError,
)
from actorcluster.ssh.config_files import CONFIG_ENV_VAR, config_hosts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from actorcluster.ssh.config import SshTarget

__all__ = ["ssh_errors", "translate_error"]

_TRANSLATED = (OSError, EOFError, UnicodeError, paramiko.SSHException)
_DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519")


@contextmanager
def ssh_errors(target: SshTarget, action: str, timeout: float) -> Iterator[None]:
    """Translate paramiko and socket errors raised inside the block.

    Args:
        target: the host being talked to (named in every message).
        action: what the block does, for messages (``"TCP connect"``).
        timeout: the block's time limit in seconds, for "timed out after" messages.
    """
    try:
        yield
    except ActorClusterError:
        raise
    except _TRANSLATED as exc:
        raise translate_error(exc, target, action, timeout) from exc


def translate_error(  # noqa: PLR0911 - one return per kind of failure reads best
    exc: BaseException, target: SshTarget, action: str, timeout: float
) -> HostUnreachableError:
    """The actorcluster error for ``exc``, raised while doing ``action`` with ``target``.

    ``action`` reads as a phrase naming the address (``"TCP connect to 10.0.0.1:22"``).
    """
    host, text = target.alias, str(exc)
    if isinstance(exc, UnicodeError):  # the name cannot even be encoded for DNS (idna)
        name = str(getattr(target, "hostname", host))[:60]
        return UnknownHostError(host, f"{name!r} is not a valid host name ({exc})")
    if isinstance(exc, socket.gaierror):
        return UnknownHostError(host, _unknown_host_reason(target, exc))
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefusedHostError(host, f"{action} refused: nothing listens there")
    limit = _timeout_limit(exc, target, timeout)
    if limit is not None:
        return HostUnreachableError(host, f"{action} timed out after {limit:g} s")
    if isinstance(exc, paramiko.AuthenticationException) or (
        text == "No authentication methods available"
    ):
        return AuthenticationError(
            host,
            f"no key or password accepted for user {target.user} at {target.address} "
            f"(tried: {tried_credentials(target)}; last answer: {text or type(exc).__name__})",
        )
    if isinstance(exc, paramiko.ChannelException):
        return _channel_error(exc, host, f"{action} refused: {exc.text} (code {exc.code})")
    if isinstance(exc, EOFError) or "EOFError" in text:
        return HostUnreachableError(host, f"{action} failed: the connection was closed")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else text
    return HostUnreachableError(host, f"{action} failed: {reason or type(exc).__name__}")


def _unknown_host_reason(target: SshTarget, exc: socket.gaierror) -> str:
    """Why a name does not resolve, with the hosts the ssh_config defines (the closest
    to the name first) when the name is not one of them: a typo names its fix."""
    resolves = f"{target.hostname} does not resolve ({exc.strerror})"
    if target.hostname != target.alias:
        return f"its HostName {resolves}"
    path = target.ssh_config_file
    if path is None:
        where = f"set ${CONFIG_ENV_VAR} or connection_kwargs['ssh_config_path']"
        return f"{resolves}; no ssh_config was read (~/.ssh/config does not exist; {where})"
    try:
        hosts = config_hosts(path)
    except ActorClusterError:
        return resolves
    if target.alias in hosts:
        return resolves
    close = difflib.get_close_matches(target.alias, hosts, n=3, cutoff=0.5)
    listed = [*close, *(h for h in hosts if h not in close)][:12]
    more = ", ..." if len(hosts) > len(listed) else ""
    shown = f"hosts there: {', '.join(listed)}{more}" if hosts else "it defines no hosts"
    return f"{target.alias} is not a Host in {path} ({shown}), and {resolves}"


def _timeout_limit(exc: BaseException, target: SshTarget, timeout: float) -> float | None:
    """The limit that ran out if ``exc`` is a timeout, else None."""
    text = str(exc)
    if isinstance(exc, TimeoutError) or text == "Timeout opening channel.":
        return timeout
    if text.startswith("Error reading SSH protocol banner") and isinstance(
        exc.__context__, TimeoutError
    ):
        return target.banner_timeout
    if text == "No existing session":  # start_client returned with the key exchange unfinished
        return target.connect_timeout
    if text == "Authentication timeout.":
        return target.auth_timeout
    return None


def _channel_error(exc: paramiko.ChannelException, host: str, reason: str) -> HostUnreachableError:
    """A refused channel, by the server's reason (a ProxyJump tunnel's says why: for a
    name it could not look up, its resolver's words, as a direct connect's gaierror)."""
    lowered = exc.text.lower()
    if "refused" in lowered:
        return ConnectionRefusedHostError(host, reason)
    if any(words in lowered for words in ("not known", "resolve", "name resolution", "no address")):
        return UnknownHostError(host, reason)
    return HostUnreachableError(host, reason)


def tried_credentials(target: SshTarget) -> str:
    """What authentication offered, in words: key files and methods, never secrets."""
    tried: list[str] = []
    if target.pkey is not None:
        tried.append(f"key {target.pkey.get_name()} {target.pkey.fingerprint}")
    tried.extend(p if os.path.isfile(p) else f"{p} (missing)" for p in target.identity_files)
    if target.allow_agent:
        tried.append("ssh-agent" if os.environ.get("SSH_AUTH_SOCK") else "no ssh-agent running")
    if target.look_for_keys:
        found = [os.path.join("~/.ssh", k) for k in _DEFAULT_KEYS if _home_key_exists(k)]
        tried.append(", ".join(found) if found else "no ~/.ssh/id_* keys")
    if target.password is not None:
        tried.append("password")
    return ", ".join(tried) or "nothing: no key file, agent or password"


def _home_key_exists(name: str) -> bool:
    return os.path.isfile(os.path.join(os.path.expanduser("~/.ssh"), name))
