"""OpenSSH host certificates (``PROTOCOL.certkeys``): reading and checking them.

paramiko receives a certificate host key (``ssh-ed25519-cert-v01@openssh.com`` ...)
when asked for one and checks the key exchange against the certified key, but it does
not look at the certificate. This module does what OpenSSH's ``sshkey.c`` does with
one: check the certificate authority's signature, then whether it is a host
certificate, valid now, for the name looked up, without critical options, and signed
with an algorithm OpenSSH accepts by default (``CASignatureAlgorithms``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import paramiko

from actorcluster.ssh.keyblobs import (
    CERT_SUFFIX,
    KEY_TYPES,
    PublicKey,
    WireReader,
    encode_string,
    parse_key_blob,
    read_plain_fields,
)

__all__ = ["CA_SIGNATURE_ALGORITHMS", "HostCertificate", "parse_certificate"]

CA_SIGNATURE_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
"""Signature algorithms accepted from a certificate authority (OpenSSH's default)."""

_HOST_CERT = 2
_USER_CERT = 1
_MAX_PRINCIPALS = 256
_VERIFIABLE = (  # CA key types paramiko can check a signature of
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


@dataclass(frozen=True, slots=True)
class HostCertificate:
    """A certificate as its fields; :func:`parse_certificate` makes one."""

    kind: str
    """The certificate type (``ssh-ed25519-cert-v01@openssh.com`` ...)."""
    key: PublicKey
    """The certified plain key."""
    serial: int
    """The serial number the CA gave it."""
    cert_type: int
    """1 for a user certificate, 2 for a host certificate."""
    key_id: str
    """The CA's name for it (``ssh-keygen -I``)."""
    principals: tuple[str, ...]
    """The names it is valid for; empty means any name."""
    valid_after: int
    """Seconds since the epoch from which it is valid."""
    valid_before: int
    """Seconds since the epoch from which it is no longer valid."""
    critical_options: bytes
    """Encoded critical options (a host certificate must have none)."""
    signature_key: PublicKey
    """The certificate authority's public key."""
    signature_type: str
    """The algorithm of the CA's signature (``ssh-ed25519``, ``rsa-sha2-512`` ...)."""
    signed_data: bytes
    """Everything the signature covers."""
    signature: bytes
    """The CA's signature, in SSH wire format."""

    @property
    def signature_checkable(self) -> bool:
        """Whether the CA's key is of a type whose signatures can be checked here."""
        return self.signature_key.kind in _VERIFIABLE

    def signature_verifies(self) -> bool:
        """Whether the CA's signature over the certificate is valid."""
        if not self.signature_checkable:
            return False
        try:
            ca = paramiko.PKey.from_type_string(self.signature_key.kind, self.signature_key.blob)
            return bool(ca.verify_ssh_sig(self.signed_data, paramiko.Message(self.signature)))
        except Exception:  # a malformed signature makes the key classes raise various kinds
            return False

    def problem_for_host(self, name: str, now: float | None = None) -> str | None:
        """Why this certificate does not vouch for host ``name`` (None if it does).

        ``name`` is the host name (or HostKeyAlias) without port, as OpenSSH checks it.
        """
        moment = int(time.time() if now is None else now)
        listed = ", ".join(self.principals[:5])
        problems = (
            (self.cert_type != _HOST_CERT, "certificate invalid: not a host certificate"),
            (moment < self.valid_after, "certificate invalid: not yet valid"),
            (moment >= self.valid_before, "certificate invalid: expired"),
            (
                bool(self.principals) and name not in self.principals,
                f"certificate invalid: {name} is not a listed principal ({listed})",
            ),
            (bool(self.critical_options), "certificate contains unsupported critical options"),
            (
                self.signature_type not in CA_SIGNATURE_ALGORITHMS,
                f"certificate signed with disallowed algorithm {self.signature_type}",
            ),
        )
        return next((why for failed, why in problems if failed), None)


def _check_options(encoded: bytes) -> None:
    """Critical options and extensions are (name, data) string pairs: check the framing."""
    reader = WireReader(encoded)
    while not reader.done():
        reader.string()
        reader.string()


def parse_certificate(blob: bytes) -> HostCertificate:
    """Read a certificate blob (its signature is not checked here).

    Raises:
        ValueError: not a certificate, or a malformed one.
    """
    reader = WireReader(blob)
    kind = reader.text()
    plain = KEY_TYPES.get(kind, "").removesuffix(CERT_SUFFIX)
    if not kind.endswith(CERT_SUFFIX) or not plain:
        raise ValueError(f"not a certificate type: {kind[:40]!r}")
    reader.string()  # nonce
    key = PublicKey(
        kind=plain, blob=encode_string(plain.encode()) + read_plain_fields(reader, plain)
    )
    serial, cert_type, key_id = reader.uint64(), reader.uint32(), reader.text()
    if cert_type not in (_USER_CERT, _HOST_CERT):
        raise ValueError(f"invalid certificate type {cert_type}")
    names = WireReader(reader.string())
    principals: list[str] = []
    while not names.done():
        principals.append(names.text())
        if len(principals) > _MAX_PRINCIPALS:
            raise ValueError("too many principals in certificate")
    valid_after, valid_before = reader.uint64(), reader.uint64()
    critical, extensions = reader.string(), reader.string()
    _check_options(critical)
    _check_options(extensions)
    reader.string()  # reserved
    signature_key = parse_key_blob(reader.string())
    signed_end = reader.offset
    signature = reader.string()
    if not reader.done():
        raise ValueError("trailing bytes after the certificate")
    return HostCertificate(
        kind=kind,
        key=key,
        serial=serial,
        cert_type=cert_type,
        key_id=key_id,
        principals=tuple(principals),
        valid_after=valid_after,
        valid_before=valid_before,
        critical_options=critical,
        signature_key=signature_key,
        signature_type=WireReader(signature).text(),
        signed_data=blob[:signed_end],
        signature=signature,
    )
