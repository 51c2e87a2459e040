"""Host key verification against OpenSSH known_hosts files.

Keys are looked up as OpenSSH stores them: under the resolved host name for port 22,
under ``[hostname]:port`` otherwise (hashed entries match too). A key that is not known
is refused unless the target trusts new keys, in which case it is appended to the
first known_hosts file; a key that differs from a known one is always refused.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import paramiko

from actorcluster._logging import get_logger
from actorcluster.errors import HostKeyChangedError, UnknownHostKeyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.ssh.config import SshTarget

__all__ = [
    "HostKeyVerifier",
    "host_key_name",
    "known_keys",
    "preferred_key_types",
    "verify_host_key",
]

log = get_logger(__name__)

_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def host_key_name(hostname: str, port: int) -> str:
    """The name OpenSSH files a host's key under: ``host``, or ``[host]:port``."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def known_keys(files: Sequence[str], name: str) -> list[tuple[str, paramiko.PKey]]:
    """Every ``(file, key)`` the known_hosts ``files`` hold for ``name``, in file order.

    Missing files are skipped; unreadable files and malformed lines are skipped with a
    warning, as OpenSSH does.
    """
    found: list[tuple[str, paramiko.PKey]] = []
    for path in files:
        if not os.path.isfile(path):
            continue
        try:
            entries = _load(path).lookup(name)
        except OSError as exc:
            log.warning("ssh.hostkey.file_unreadable", known_hosts=path, error=str(exc))
            continue
        found.extend((path, key) for key in (entries or {}).values())
    return found


def _load(path: str) -> paramiko.HostKeys:
    """Parse a known_hosts file line by line, skipping (with a warning) bad lines."""
    keys = paramiko.HostKeys()
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
            except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, ValueError):
                log.warning("ssh.hostkey.bad_line", known_hosts=path, line=number)
                continue
            if entry is None:  # a comment, a blank line or an unknown key type
                continue
            for hostname in entry.hostnames:
                keys.add(hostname, entry.key.get_name(), entry.key)
    return keys


def preferred_key_types(files: Sequence[str], name: str, offered: Sequence[str]) -> list[str]:
    """``offered`` host key algorithms, those of keys already known for ``name`` first.

    Negotiating the known type avoids reporting a changed key when the server simply
    has several keys (OpenSSH orders HostKeyAlgorithms the same way).
    """
    known: list[str] = []
    for _, key in known_keys(files, name):
        kind = key.get_name()
        known.extend(_RSA_ALGORITHMS if kind == "ssh-rsa" else (kind,))
    first = [kind for kind in dict.fromkeys(known) if kind in offered]
    return first + [kind for kind in offered if kind not in first]


def _same(a: paramiko.PKey, b: paramiko.PKey) -> bool:
    return a.get_name() == b.get_name() and a.asbytes() == b.asbytes()


def verify_host_key(target: SshTarget, key: paramiko.PKey) -> None:
    """Check the key ``target``'s server offered; record it if new and trusted.

    Raises:
        HostKeyChangedError: known_hosts holds a different key for this host.
        UnknownHostKeyError: no key is known for this host and new keys are not trusted.
    """
    name = host_key_name(target.hostname, target.port)
    offered = f"{key.get_name()} {key.fingerprint}"
    known = known_keys(target.known_hosts_files, name)
    if any(_same(key, old) for _, old in known):
        log.debug("ssh.hostkey.verified", host=target.alias, fingerprint=key.fingerprint)
        return
    if known:
        same_type = [entry for entry in known if entry[1].get_name() == key.get_name()]
        path, old = (same_type or known)[0]
        raise HostKeyChangedError(
            target.alias,
            f"{name} offered {offered} but known_hosts has {old.get_name()} "
            f"{old.fingerprint} (possible man-in-the-middle; remove the old entry only "
            f"if the host's key was really replaced)",
            path,
        )
    files = target.known_hosts_files
    if not target.accept_new_host_keys:
        raise UnknownHostKeyError(
            target.alias,
            f"{name} offered {offered}, which no known_hosts file lists (pass "
            f"accept_new_host_keys=True or set StrictHostKeyChecking accept-new to trust it)",
            ", ".join(files),
        )
    if files:
        _record(files[0], name, key)
    log.info(
        "ssh.hostkey.accepted",
        host=target.alias,
        key_type=key.get_name(),
        fingerprint=key.fingerprint,
        known_hosts=files[0] if files else None,
    )


def _record(path: str, name: str, key: paramiko.PKey) -> None:
    """Append ``name key`` to the known_hosts file ``path`` (created 0600 if needed)."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    line = f"{name} {key.get_name()} {key.get_base64()}\n".encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


class HostKeyVerifier(paramiko.MissingHostKeyPolicy):
    """An ``SSHClient`` policy that runs :func:`verify_host_key` for ``target``.

    Give it to a client that holds no host keys of its own, so that every key offered
    reaches it.
    """

    def __init__(self, target: SshTarget) -> None:
        self._target = target

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Verify ``key``; raise a :class:`~actorcluster.errors.HostKeyError` if refused."""
        verify_host_key(self._target, key)
