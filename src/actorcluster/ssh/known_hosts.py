"""Reading and appending known_hosts files, line by line as OpenSSH's ``hostfile.c`` does.

A line is ``[@marker] hosts keytype base64 [comment]``: fields separated by any run of
spaces and tabs, leading whitespace allowed; ``#`` lines and blank lines are comments.
The marker is ``@revoked`` (the key is refused for the hosts, whatever else says) or
``@cert-authority`` (the key signs host certificates for the hosts). ``hosts`` is one
hashed name or a pattern list (see :mod:`actorcluster.ssh.hostmatch`).

Files are parsed whole once per content (cached by path and content digest); a line
that cannot be read is skipped, and reported in one ``ssh.hostkey.bad_line`` warning
per file content, not once per connection.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.ssh.hostcerts import parse_certificate
from actorcluster.ssh.hostmatch import hash_host_name, match_host_field
from actorcluster.ssh.keyblobs import KEY_TYPES, PublicKey, decode_base64, parse_key_blob

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "CERT_AUTHORITY",
    "REVOKED",
    "KnownHostsEntry",
    "append_known_host",
    "load_known_hosts",
    "lookup_known_hosts",
    "parse_known_hosts",
]

log = get_logger(__name__)

CERT_AUTHORITY = "@cert-authority"
"""The marker of a certificate authority's line."""
REVOKED = "@revoked"
"""The marker of a revoked key's line."""

_BLANKS = " \t"
_MAX_REPORTED = 20


@dataclass(frozen=True, slots=True)
class KnownHostsEntry:
    """One usable line of a known_hosts file."""

    path: str
    """The file it is in."""
    line: int
    """Its line number (1-based)."""
    marker: str
    """``""``, :data:`CERT_AUTHORITY` or :data:`REVOKED`."""
    hosts: str
    """The host field as written: a pattern list or one hashed name."""
    key: PublicKey
    """The key it holds."""

    @property
    def where(self) -> str:
        """``path:line``, for messages."""
        return f"{self.path}:{self.line}"

    def matches(self, name: str) -> bool:
        """Whether the line is about host ``name`` (``host`` or ``[host]:port``)."""
        return match_host_field(name, self.hosts) is True


def _split_field(text: str) -> tuple[str, str]:
    """``text`` cut at its first space or tab: (field, rest after the blanks)."""
    end = next((i for i, c in enumerate(text) if c in _BLANKS), len(text))
    return text[:end], text[end:].lstrip(_BLANKS)


def _split_marker(text: str) -> tuple[str, str]:
    """The marker of a line (``""`` if none) and the rest, as ``check_markers`` reads it."""
    marker = ""
    while text.startswith("@"):
        if marker:
            raise ValueError("more than one marker")
        end = text.find(" ")
        end = text.find("\t") if end < 0 else end
        if end < 0:
            raise ValueError("a marker and nothing else")
        word = text[:end]
        if word not in (CERT_AUTHORITY, REVOKED):
            raise ValueError(f"unknown marker {word[:32]!r}")
        marker, text = word, text[end:].lstrip(_BLANKS)
    return marker, text


def _parse_key(kind_text: str, data: str) -> PublicKey:
    kind = KEY_TYPES.get(kind_text)
    if kind is None:
        raise ValueError(f"unknown key type {kind_text[:40]!r}")
    blob = decode_base64(data)
    if kind.endswith("-cert-v01@openssh.com"):
        key = PublicKey(kind=parse_certificate(blob).kind, blob=blob)
    else:
        key = parse_key_blob(blob)
    if key.kind != kind:
        raise ValueError(f"key type {kind_text} does not match its data ({key.kind})")
    return key


def _parse_line(text: str) -> tuple[str, str, PublicKey] | None:
    """(marker, hosts, key) of one line, None for a comment or blank line.

    Raises:
        ValueError: the line is malformed (the message says how).
    """
    text = text.removesuffix("\r").lstrip(_BLANKS)
    if not text or text.startswith("#"):
        return None
    marker, text = _split_marker(text)
    hosts, text = _split_field(text)
    if not hosts:
        raise ValueError("no host names")
    if match_host_field("", hosts) is None:
        raise ValueError("a hashed host name that cannot be decoded")
    if not text or text.startswith("#"):
        raise ValueError("no key after the host names")
    kind_text, text = _split_field(text)
    if not text:
        raise ValueError("a key type without key data")
    data, _ = _split_field(text)
    return marker, hosts, _parse_key(kind_text, data)


def parse_known_hosts(
    text: str, path: str
) -> tuple[tuple[KnownHostsEntry, ...], tuple[tuple[int, str], ...]]:
    """Parse the contents of known_hosts file ``path``.

    Returns:
        The usable entries, and ``(line number, reason)`` for each malformed line.
    """
    entries: list[KnownHostsEntry] = []
    bad: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n"), 1):
        try:
            parsed = _parse_line(line.split("\0", 1)[0])
        except ValueError as exc:
            bad.append((number, str(exc)))
            continue
        if parsed is not None:
            marker, hosts, key = parsed
            entries.append(
                KnownHostsEntry(path=path, line=number, marker=marker, hosts=hosts, key=key)
            )
    return tuple(entries), tuple(bad)


_cache: dict[str, tuple[str, tuple[KnownHostsEntry, ...]]] = {}
_cache_lock = threading.Lock()


def load_known_hosts(path: str) -> tuple[KnownHostsEntry, ...]:
    """The entries of known_hosts file ``path``; none if it is missing or unreadable.

    Parsed once per content; a malformed line or an unreadable file is reported once
    per content (or error), with a warning.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return ()
    except OSError as exc:
        if _remember(path, f"error:{exc}", ()):
            _report_unreadable(path, exc)
        return ()
    digest = hashlib.sha256(data).hexdigest()
    with _cache_lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == digest:
        return cached[1]
    entries, bad = parse_known_hosts(data.decode("utf-8", "surrogateescape"), path)
    if _remember(path, digest, entries):
        _report_bad_lines(path, bad)
    return entries


def _remember(path: str, digest: str, entries: tuple[KnownHostsEntry, ...]) -> bool:
    """Cache ``entries`` for ``path``; whether this content (or error) is new."""
    with _cache_lock:
        known = _cache.get(path)
        _cache[path] = (digest, entries)
    return known is None or known[0] != digest


def _report_unreadable(path: str, exc: OSError) -> None:
    log.warning("ssh.hostkey.file_unreadable", known_hosts=path, error=str(exc))


def _report_bad_lines(path: str, bad: Sequence[tuple[int, str]]) -> None:
    if bad:
        log.warning(
            "ssh.hostkey.bad_line",
            known_hosts=path,
            line=bad[0][0],
            reason=bad[0][1],
            lines=[number for number, _ in bad[:_MAX_REPORTED]],
            count=len(bad),
        )


def lookup_known_hosts(paths: Iterable[str], name: str) -> list[KnownHostsEntry]:
    """Every entry of ``paths`` (in order) whose host field matches ``name``."""
    return [entry for path in paths for entry in load_known_hosts(path) if entry.matches(name)]


def append_known_host(path: str, names: Sequence[str], key: PublicKey, *, hashed: bool) -> None:
    """Record ``key`` for ``names`` at the end of ``path`` (created 0600, its folder 0700).

    Unhashed names share one line (``host,ip``); hashed names get one line each, as
    OpenSSH writes them.
    """
    fields = [hash_host_name(n) for n in names] if hashed else [",".join(names)]
    text = "".join(f"{field} {key.text}\n" for field in fields).encode()
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            text = b"\n" + text
        os.write(fd, text)
    finally:
        os.close(fd)
