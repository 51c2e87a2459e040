"""Host key verification as OpenSSH's client does it (``sshconnect.c: check_host_key``).

The key is looked up under the name OpenSSH files it under (``host`` for port 22,
``[host]:port`` otherwise, or the HostKeyAlias) in the user's known_hosts files, then
the global ones. Then, as OpenSSH decides:

* a key (or the certificate authority of a certificate) marked ``@revoked`` for the
  name is refused, always;
* a certificate signed by a ``@cert-authority`` of the name, valid now for the host,
  is accepted; a certificate that is not is checked again as its plain key;
* a key on record for the name is accepted; a different key on record (of any type)
  is a changed key, refused;
* with no key on record for ``[host]:port``, a key recorded for the bare ``host`` is
  accepted too (OpenSSH's "checking without port identifier");
* a key with nothing on record is refused, unless new keys are trusted
  (``accept_new_host_keys``, ``StrictHostKeyChecking accept-new``): then it is
  recorded in the first user known_hosts file.

With ``CheckHostIP yes`` (OpenSSH's default is no) the server's address is looked up
too, except for loopback addresses, an address given as the host name, and ProxyJump
hops, as in OpenSSH. Stricter than OpenSSH on purpose: a revoked key is refused even
with ``StrictHostKeyChecking no`` and even when found through the port-less name or the
address, and accept-new does not record the plain key of a host covered by a
``@cert-authority`` line (OpenSSH does).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

import paramiko

from actorcluster._logging import get_logger
from actorcluster.errors import (
    HostKeyChangedError,
    HostKeyError,
    RevokedHostKeyError,
    UnknownHostKeyError,
)
from actorcluster.ssh.hostcerts import HostCertificate, parse_certificate
from actorcluster.ssh.hostcheck import Outcome, Status, check_names
from actorcluster.ssh.hostmatch import host_port_name, lowercase_ascii
from actorcluster.ssh.keyblobs import CERT_SUFFIX, KEY_TYPES, PublicKey
from actorcluster.ssh.known_hosts import CERT_AUTHORITY, append_known_host, lookup_known_hosts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.ssh.config import SshTarget

__all__ = [
    "HostKeyVerifier",
    "host_key_name",
    "preferred_key_types",
    "verify_host_key",
]

log = get_logger(__name__)

_UNRECORDABLE = frozenset("@?*#[]|'\"\\")  # OpenSSH never writes such a name to known_hosts


def host_key_name(hostname: str, port: int) -> str:
    """The name OpenSSH files a host's key under: ``host``, or ``[host]:port``."""
    return host_port_name(hostname, port)


def _lookup_hostname(hostname: str) -> str:
    """``hostname`` as OpenSSH looks it up: an address in canonical form, a name lowercased."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        return lowercase_ascii(hostname)


def _lookup_name(target: SshTarget) -> str:
    """The name ``target``'s key is looked up and recorded under."""
    if target.host_key_alias:
        return lowercase_ascii(target.host_key_alias)
    return host_port_name(_lookup_hostname(target.hostname), target.port)


def _files(target: SshTarget) -> tuple[str, ...]:
    return (*target.known_hosts_files, *target.global_known_hosts_files)


def preferred_key_types(target: SshTarget, offered: Sequence[str]) -> list[str]:
    """``offered`` host key algorithms in the order OpenSSH asks for them.

    If a plain key of the first algorithm's type is on record, ``offered`` is kept;
    otherwise algorithms of key types on record come first (certificate algorithms
    too when a ``@cert-authority`` line covers the host), the rest keeping their order.
    Negotiating a known type avoids reporting a changed key when the server simply has
    several keys.
    """
    entries = lookup_known_hosts(_files(target), _lookup_name(target))
    known = {e.key.kind for e in entries if not e.marker and not e.key.is_certificate}
    has_ca = any(e.marker == CERT_AUTHORITY for e in entries)

    def plain(algorithm: str) -> str:
        return KEY_TYPES.get(algorithm, algorithm).removesuffix(CERT_SUFFIX)

    if not offered or plain(offered[0]) in known:
        return list(offered)
    first = [a for a in offered if plain(a) in known or (has_ca and a.endswith(CERT_SUFFIX))]
    return first + [a for a in offered if a not in first]


def _offered_key(
    target: SshTarget, key: paramiko.PKey
) -> tuple[PublicKey, HostCertificate | None, str]:
    """The server's plain key, its certificate if it sent one that can be used, and why
    a certificate it sent cannot be ("" if none was sent or it can)."""
    plain = PublicKey.from_paramiko(key)
    blob = key.public_blob
    if blob is None or not blob.key_type.endswith(CERT_SUFFIX):
        return plain, None, ""
    try:
        cert = parse_certificate(blob.key_blob)
    except ValueError as exc:
        raise HostKeyError(target.alias, f"its host certificate is malformed: {exc}") from None
    if not cert.signature_checkable:  # OpenSSH could check it; we fall back to the plain key
        return plain, None, f"its CA's key type {cert.signature_key.kind} is not supported here"
    if cert.key != plain or not cert.signature_verifies():
        raise HostKeyError(
            target.alias,
            f"its host certificate {cert.kind} for key {plain.fingerprint} does not carry a "
            f"valid signature of its CA {cert.signature_key.describe()}",
        )
    return plain, cert, ""


def verify_host_key(target: SshTarget, key: paramiko.PKey, address: str | None = None) -> None:
    """Check the key ``target``'s server offered; record it if new and trusted.

    Args:
        target: the host connected to.
        key: the server's host key (a certificate's key when it sent a certificate).
        address: the server's IP address, for CheckHostIP; None when not connected
            directly (a ProxyJump hop).

    Raises:
        RevokedHostKeyError: the key, or the CA that signed its certificate, is revoked.
        HostKeyChangedError: a different key is on record for this host (or address).
        UnknownHostKeyError: no key is on record and new keys are not trusted, or
            cannot be recorded, or a ``@cert-authority`` covers the host.
        HostKeyError: the server sent a malformed or badly signed certificate.
    """
    plain, cert, cert_problem = _offered_key(target, key)
    hostname = _lookup_hostname(target.hostname)
    ip = _checked_address(target, hostname, address)
    readonly = _readonly_reason(target, hostname)
    outcome = check_names(
        files=_files(target),
        hostname=hostname,
        alias=lowercase_ascii(target.host_key_alias) if target.host_key_alias else None,
        port=target.port,
        ip=ip,
        key=plain,
        cert=cert,
        accept_new=target.accept_new_host_keys,
        writable=not readonly,
    )
    if not outcome.accepted:
        outcome = replace(outcome, cert_problem=outcome.cert_problem or cert_problem)
        raise _refusal(target, outcome, plain, cert, readonly)
    if outcome.record and target.known_hosts_files:
        path = target.known_hosts_files[0]
        append_known_host(path, outcome.record, plain, hashed=target.hash_known_hosts)
        log.info(
            "ssh.hostkey.accepted",
            host=target.alias,
            names=list(outcome.record),
            key_type=plain.kind,
            fingerprint=plain.fingerprint,
            known_hosts=path,
        )
    found = outcome.found
    log.debug(
        "ssh.hostkey.verified",
        host=target.alias,
        fingerprint=plain.fingerprint,
        certificate=outcome.via_certificate,
        known_hosts=found.where if found is not None else None,
    )


def _checked_address(target: SshTarget, hostname: str, address: str | None) -> str | None:
    """The address to look up too (CheckHostIP), or None where OpenSSH skips it."""
    if not target.check_host_ip or address is None:
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    if parsed.is_loopback or hostname == address:
        return None
    return address


def _readonly_reason(target: SshTarget, hostname: str) -> str:
    """Why a new key could not be recorded ("" if it could)."""
    if not target.known_hosts_files:
        return "no user known_hosts file to record it in (UserKnownHostsFile none)"
    if _UNRECORDABLE & set(hostname):
        return f"the host name {hostname!r} cannot be written to known_hosts"
    return ""


def _refusal(
    target: SshTarget,
    outcome: Outcome,
    plain: PublicKey,
    cert: HostCertificate | None,
    readonly: str,
) -> HostKeyError:
    """The error for a refused key."""
    name = outcome.name
    offered = plain.describe()
    if cert is not None:
        offered += f" (certificate {cert.kind} signed by CA {cert.signature_key.fingerprint})"
    files = ", ".join(_files(target))
    found = outcome.found
    if outcome.status is Status.REVOKED and found is not None:
        what = "its certificate's CA" if found.key != plain else "that key"
        return RevokedHostKeyError(
            target.alias,
            f"{name} offered {offered}, and {found.where} marks {what} @revoked "
            f"(a stolen key may be impersonating the host; it is refused whatever "
            f"StrictHostKeyChecking says)",
            found.path,
        )
    if outcome.status is Status.CHANGED and found is not None:
        what = f"for the address {outcome.ip_name}" if outcome.ip_changed else "for it"
        return HostKeyChangedError(
            target.alias,
            f"{name} offered {offered} but {found.where} has {found.key.describe()} {what} "
            f"(possible man-in-the-middle; remove the old entry only if the host's key was "
            f"really replaced)",
            found.path,
        )
    return UnknownHostKeyError(
        target.alias, _unknown_reason(target, outcome, offered, readonly), files
    )


def _keyscan_hint(target: SshTarget) -> str:
    """The ssh-keyscan command line that records the host's keys where they are looked up."""
    files = target.known_hosts_files or target.global_known_hosts_files or ("~/.ssh/known_hosts",)
    scan = f"ssh-keyscan -p {target.port} {target.hostname}"
    if target.host_key_alias:
        scan += f" | sed 's/^[^ ]*/{target.host_key_alias}/'"
    return f"`{scan} >> {files[0]}`"


def _unknown_reason(target: SshTarget, outcome: Outcome, offered: str, readonly: str) -> str:
    """Why an unknown key was refused, and the ways out."""
    head = f"{outcome.name} offered {offered}"
    if outcome.cert_problem:
        head += f"; its certificate does not vouch for it ({outcome.cert_problem})"
    scan = _keyscan_hint(target)
    authority = outcome.authority
    if authority is not None:
        return (
            f"{head}, and {authority.where} makes a @cert-authority responsible for this host: "
            f"only a certificate it signed, or a key recorded with {scan} after checking "
            f"its fingerprint, is trusted (accept-new does not record keys of such hosts)"
        )
    if target.accept_new_host_keys and readonly:
        return f"{head}, not on record and not trusted: {readonly}; record it with {scan}"
    return (
        f"{head}, which no known_hosts file lists. To trust it, check its fingerprint, then "
        f"record it with {scan}, or set `StrictHostKeyChecking accept-new` for this host in "
        f"ssh_config, or pass accept_new_host_keys=True"
    )


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
        transport = client.get_transport()
        sock = transport.sock if transport is not None else None
        address = None
        if isinstance(sock, socket.socket):
            address = str(sock.getpeername()[0])
        verify_host_key(self._target, key, address)
