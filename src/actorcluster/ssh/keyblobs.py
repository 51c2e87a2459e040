"""Public keys in SSH wire format, read as OpenSSH's ``sshkey.c`` reads them.

known_hosts may name key types paramiko cannot use (``ssh-dss``, security keys,
certificates); they still count as keys on record for a host. So keys are kept as
:class:`PublicKey` (type and canonical blob) and compared by value, and paramiko is
asked only to validate the types it knows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import paramiko

__all__ = [
    "CERT_SUFFIX",
    "KEY_TYPES",
    "PublicKey",
    "WireReader",
    "decode_base64",
    "encode_mpint",
    "encode_string",
    "parse_key_blob",
    "read_plain_fields",
]

CERT_SUFFIX = "-cert-v01@openssh.com"
"""What a certificate type's name ends with."""

# Fields after the type name, per plain type: s = string, m = mpint.
_FIELDS = {
    "ssh-ed25519": "s",
    "ssh-rsa": "mm",
    "ecdsa-sha2-nistp256": "ss",
    "ecdsa-sha2-nistp384": "ss",
    "ecdsa-sha2-nistp521": "ss",
    "ssh-dss": "mmmm",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sss",
    "sk-ssh-ed25519@openssh.com": "ss",
}
_ALIASES = {  # names OpenSSH accepts in a key line for a key whose blob says otherwise
    "rsa-sha2-256": "ssh-rsa",
    "rsa-sha2-512": "ssh-rsa",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-256" + CERT_SUFFIX: "ssh-rsa" + CERT_SUFFIX,
    "rsa-sha2-512" + CERT_SUFFIX: "ssh-rsa" + CERT_SUFFIX,
}

KEY_TYPES: dict[str, str] = {
    **{name: name for name in _FIELDS},
    **{name + CERT_SUFFIX: name + CERT_SUFFIX for name in _FIELDS},
    **_ALIASES,
}
"""Every key type name OpenSSH reads in known_hosts, mapped to the type its blob carries."""

_MIN_RSA_BITS = 1024  # OpenSSH refuses smaller RSA keys when it reads them
_ED25519_BYTES = 32


class WireReader:
    """Reads SSH wire-format fields from ``data``; every read raises ValueError if short."""

    def __init__(self, data: bytes) -> None:
        """Read ``data`` from its start."""
        self._data = data
        self.offset = 0

    def take(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        end = self.offset + size
        if end > len(self._data):
            raise ValueError("truncated key data")
        chunk, self.offset = self._data[self.offset : end], end
        return chunk

    def uint32(self) -> int:
        """The next big-endian uint32."""
        return int.from_bytes(self.take(4), "big")

    def uint64(self) -> int:
        """The next big-endian uint64."""
        return int.from_bytes(self.take(8), "big")

    def string(self) -> bytes:
        """The next length-prefixed string."""
        return self.take(self.uint32())

    def text(self) -> str:
        """The next string, decoded as UTF-8."""
        try:
            return self.string().decode()
        except UnicodeDecodeError as exc:
            raise ValueError("key data holds a name that is not UTF-8") from exc

    def mpint(self) -> int:
        """The next mpint; negative ones are refused, as OpenSSH does."""
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise ValueError("negative number in key data")
        return int.from_bytes(raw, "big")

    def done(self) -> bool:
        """Whether every byte was read."""
        return self.offset == len(self._data)


def encode_string(data: bytes) -> bytes:
    """``data`` as an SSH string (uint32 length, then the bytes)."""
    return len(data).to_bytes(4, "big") + data


def encode_mpint(value: int) -> bytes:
    """A non-negative ``value`` as a minimal SSH mpint."""
    return encode_string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key (or certificate) as its type name and canonical wire blob."""

    kind: str
    """The type name the blob carries (``ssh-ed25519``, ``ssh-rsa``, ...)."""
    blob: bytes
    """The key in SSH wire format; two keys are the same key when their blobs are equal."""

    @property
    def is_certificate(self) -> bool:
        """Whether this is a certificate rather than a plain key."""
        return self.kind.endswith(CERT_SUFFIX)

    @property
    def fingerprint(self) -> str:
        """``SHA256:...``, as ``ssh-keygen -l`` and paramiko print it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    @property
    def text(self) -> str:
        """``type base64``, as a known_hosts line holds it."""
        return f"{self.kind} {base64.b64encode(self.blob).decode()}"

    def describe(self) -> str:
        """``type fingerprint``, for messages."""
        return f"{self.kind} {self.fingerprint}"

    @classmethod
    def from_paramiko(cls, key: paramiko.PKey) -> PublicKey:
        """The plain public key of paramiko's ``key`` (a certificate's key, for a certificate)."""
        return parse_key_blob(key.asbytes())


def read_plain_fields(reader: WireReader, kind: str) -> bytes:
    """Read the key fields of plain type ``kind``; return them re-encoded canonically.

    Raises:
        ValueError: a field is missing or invalid for the type.
    """
    values: list[bytes | int] = [
        reader.mpint() if field == "m" else reader.string() for field in _FIELDS[kind]
    ]
    first = values[0]
    if kind in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com") and (
        isinstance(first, int) or len(first) != _ED25519_BYTES
    ):
        raise ValueError("ed25519 key of the wrong size")
    if kind.startswith(("ecdsa-", "sk-ecdsa-")) and first != _curve_of(kind):
        raise ValueError("ECDSA key whose curve differs from its type")
    if kind == "ssh-rsa" and int(values[1]).bit_length() < _MIN_RSA_BITS:
        raise ValueError(f"RSA key shorter than {_MIN_RSA_BITS} bits")
    return b"".join(
        encode_mpint(value) if isinstance(value, int) else encode_string(value) for value in values
    )


def _curve_of(kind: str) -> bytes:
    """``nistp256`` for ``ecdsa-sha2-nistp256`` and ``sk-ecdsa-sha2-nistp256@openssh.com``."""
    return kind.split("@", maxsplit=1)[0].rsplit("-", 1)[1].encode()


def parse_key_blob(blob: bytes) -> PublicKey:
    """The plain public key in ``blob``.

    Raises:
        ValueError: not a plain key of a type OpenSSH knows, or a malformed one.
    """
    reader = WireReader(blob)
    kind = reader.text()
    if kind not in _FIELDS:
        raise ValueError(f"not a plain key type: {kind[:40]!r}")
    canonical = encode_string(kind.encode()) + read_plain_fields(reader, kind)
    if not reader.done():
        raise ValueError("trailing bytes after the key")
    if kind.startswith("ecdsa-"):
        try:  # the point must lie on the curve; paramiko (cryptography) checks that
            paramiko.ECDSAKey(data=canonical)
        except Exception as exc:  # cryptography and paramiko raise several kinds here
            raise ValueError(f"invalid ECDSA key: {exc}") from exc
    return PublicKey(kind=kind, blob=canonical)


def decode_base64(text: str) -> bytes:
    """Decode a key's base64 text; whitespace inside is skipped, as OpenSSH skips it.

    Raises:
        ValueError: not valid base64.
    """
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("key is not valid base64") from exc
