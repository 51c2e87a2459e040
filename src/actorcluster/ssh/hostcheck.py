"""The host key decision itself: OpenSSH's ``check_host_key``, without I/O or paramiko.

:func:`check_names` looks a key up in known_hosts files under the names OpenSSH uses
and says whether it is accepted, what to record, and why not. It follows
``sshconnect.c`` step by step (a certificate first, then its plain key; the port-less
name when ``[host]:port`` has nothing on record; the address with CheckHostIP), plus
the two refusals OpenSSH does not make: a revoked key found through the port-less
name or the address, and recording a plain key of a host under a ``@cert-authority``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from actorcluster.ssh.hostmatch import host_port_name
from actorcluster.ssh.known_hosts import (
    CERT_AUTHORITY,
    REVOKED,
    KnownHostsEntry,
    lookup_known_hosts,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.ssh.hostcerts import HostCertificate
    from actorcluster.ssh.keyblobs import PublicKey

__all__ = ["Outcome", "Status", "check_names", "key_status"]


class Status(enum.Enum):
    """What known_hosts says about a key for one name (OpenSSH's ``HostStatus``)."""

    OK = "ok"
    """The key (or its certificate's CA) is on record."""
    NEW = "new"
    """Nothing is on record."""
    CHANGED = "changed"
    """Other keys are on record, not this one."""
    REVOKED = "revoked"
    """The key (or its certificate's CA) is marked ``@revoked``."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision on a host key."""

    accepted: bool
    """Whether the key is trusted."""
    status: Status
    """What known_hosts said (for the address, if that decided)."""
    name: str
    """The name the key was looked up under."""
    found: KnownHostsEntry | None = None
    """The entry that decided: matching, different, revoked or the CA's."""
    record: tuple[str, ...] = ()
    """Names to record the key under (new key, or a new address of a known host)."""
    cert_problem: str = ""
    """Why the server's certificate did not vouch for its key ("" if it did, or none)."""
    authority: KnownHostsEntry | None = None
    """A ``@cert-authority`` line for the host, when the key was not on record."""
    ip_name: str | None = None
    """The address name looked up too (CheckHostIP), if any."""
    ip_changed: bool = False
    """Whether the refusal is for a different key on record for the address."""
    via_certificate: bool = False
    """Whether the key was accepted through its certificate."""


def key_status(
    entries: Sequence[KnownHostsEntry], key: PublicKey, cert: HostCertificate | None
) -> tuple[Status, KnownHostsEntry | None]:
    """The status of ``key`` (certified by ``cert``, if given) among ``entries``.

    As ``check_hostkeys_by_key_or_type``: a certificate is checked against
    ``@cert-authority`` lines only, a plain key against plain lines only; a key or CA
    that a matching ``@revoked`` line names is revoked whatever else says.
    """
    want = CERT_AUTHORITY if cert is not None else ""
    status, found = Status.NEW, None
    for entry in entries:
        if entry.marker != want:
            continue
        if entry.key == (cert.signature_key if cert is not None else key):
            status, found = Status.OK, entry
            break
        if cert is None and (found is None or found.key.kind != key.kind):
            status, found = Status.CHANGED, entry  # report one of the key's own type if any
    for entry in entries:
        if entry.marker == REVOKED and (
            entry.key == key or (cert is not None and entry.key == cert.signature_key)
        ):
            return Status.REVOKED, entry
    return status, found


_Found = tuple[Status, "KnownHostsEntry | None"]


@dataclass(frozen=True, slots=True)
class _Names:
    """The names one check looks up, and what known_hosts holds for them."""

    name: str
    entries: tuple[KnownHostsEntry, ...]
    ip_name: str | None
    ip_entries: tuple[KnownHostsEntry, ...] | None


@dataclass(frozen=True)
class _Check:
    """One host's lookup settings."""

    files: tuple[str, ...]
    hostname: str
    alias: str | None
    ip: str | None
    accept_new: bool
    writable: bool

    def run(
        self, key: PublicKey, cert: HostCertificate | None, port: int, *, quiet: bool
    ) -> Outcome:
        """Check under the names for ``port``; ``quiet`` for the port-less retry."""
        name = self.alias or host_port_name(self.hostname, port)
        ip_name = host_port_name(self.ip, port) if self.ip and cert is None else None
        names = _Names(
            name=name,
            entries=tuple(lookup_known_hosts(self.files, name)),
            ip_name=ip_name,
            ip_entries=tuple(lookup_known_hosts(self.files, ip_name)) if ip_name else None,
        )
        cert_problem = ""
        while True:
            outcome = self._decide(names, key, cert, port=port, quiet=quiet)
            if outcome.accepted or cert is None or outcome.status is Status.REVOKED:
                return replace(outcome, cert_problem=outcome.cert_problem or cert_problem)
            cert_problem = outcome.cert_problem or f"no @cert-authority for {name} names its CA"
            cert = None  # OpenSSH: "No matching CA found. Retry with plain key"

    def _decide(
        self,
        names: _Names,
        key: PublicKey,
        cert: HostCertificate | None,
        *,
        port: int,
        quiet: bool,
    ) -> Outcome:
        status, found = key_status(names.entries, key, cert)
        ip: _Found = (status, found)
        if names.ip_entries is not None:
            ip = key_status(names.ip_entries, key, None)
        authority = next((e for e in names.entries if e.marker == CERT_AUTHORITY), None)
        base = Outcome(
            accepted=False,
            status=status,
            name=names.name,
            found=found,
            ip_name=names.ip_name,
            authority=authority if status is Status.NEW else None,
        )
        if status is Status.OK:
            return self._known(base, cert, ip, quiet=quiet)
        if status is Status.NEW:
            return self._new(base, key, cert, ip, port=port, quiet=quiet)
        return base  # REVOKED, CHANGED: refused (a certificate never gets CHANGED)

    def _known(
        self, base: Outcome, cert: HostCertificate | None, ip: _Found, *, quiet: bool
    ) -> Outcome:
        """The key (or its certificate's CA) is on record for the name."""
        if cert is not None:
            problem = cert.problem_for_host(self.alias or self.hostname)
            if problem:
                return replace(base, cert_problem=problem)
            return replace(base, accepted=True, via_certificate=True)
        refusal = _address_refusal(base, *ip)
        if refusal is not None:
            return refusal
        new_ip = base.ip_name if ip[0] is Status.NEW and self.writable and not quiet else None
        return replace(base, accepted=True, record=(new_ip,) if new_ip else ())

    def _new(
        self,
        base: Outcome,
        key: PublicKey,
        cert: HostCertificate | None,
        ip: _Found,
        *,
        port: int,
        quiet: bool,
    ) -> Outcome:
        """Nothing is on record for the name."""
        if self.alias is None and port not in (0, 22) and not quiet:
            bare = self.run(key, cert, 0, quiet=True)  # "checking without port identifier"
            if bare.accepted or bare.status is Status.REVOKED:
                return bare
        trusted = self.accept_new and self.writable
        if quiet or cert is not None or not trusted or base.authority is not None:
            return base  # stricter than OpenSSH for a CA's host: the CA vouches, not accept-new
        refusal = _address_refusal(base, *ip)
        if refusal is not None:
            return refusal
        new_ip = base.ip_name if ip[0] is Status.NEW else None
        return replace(base, accepted=True, record=(base.name, new_ip) if new_ip else (base.name,))


def _address_refusal(
    base: Outcome, ip_status: Status, ip_found: KnownHostsEntry | None
) -> Outcome | None:
    """A refusal for what is on record for the address (CheckHostIP), or None."""
    if base.ip_name is None:
        return None
    if ip_status is Status.CHANGED:
        return replace(base, status=Status.CHANGED, found=ip_found, ip_changed=True)
    if ip_status is Status.REVOKED:
        return replace(base, status=Status.REVOKED, found=ip_found)
    return None


def check_names(
    *,
    files: Sequence[str],
    hostname: str,
    alias: str | None,
    port: int,
    ip: str | None,
    key: PublicKey,
    cert: HostCertificate | None,
    accept_new: bool,
    writable: bool,
) -> Outcome:
    """Decide on ``key`` (certified by ``cert`` if given) for a host.

    Args:
        files: known_hosts files, the user's first.
        hostname: the host name (lowercased) or address (canonical) connected to.
        alias: the HostKeyAlias (lowercased), looked up instead of the host name.
        port: the port connected to.
        ip: the server's address to look up too (CheckHostIP), or None.
        key: the server's plain key.
        cert: the server's certificate for ``key`` (its signature already checked).
        accept_new: whether a key with nothing on record is trusted and recorded.
        writable: whether new names can be recorded at all.
    """
    check = _Check(tuple(files), hostname, alias, ip, accept_new, writable)
    return check.run(key, cert, port, quiet=False)
