"""Host name patterns and hashed names, as OpenSSH's ``match.c`` and ``hostfile.c`` read them.

A known_hosts host field is either one hashed name (``|1|salt|hmac``, written by
``ssh-keygen -H`` or ``HashKnownHosts yes``) or a comma-separated list of patterns:
``*`` matches any run of characters, ``?`` any one character, everything else itself
(ASCII case ignored); a pattern starting with ``!`` is negated. A list matches a name
when some positive pattern matches it and no negated one does: negation always wins.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re

__all__ = [
    "HASH_MAGIC",
    "hash_host_name",
    "host_port_name",
    "lowercase_ascii",
    "match_host_field",
    "match_pattern",
    "match_pattern_list",
]

HASH_MAGIC = "|1|"
"""How a hashed known_hosts name starts."""

_SALT_BYTES = 20  # HMAC-SHA1's block of salt, as OpenSSH makes it
_MAX_PATTERN = 1023  # match.c's sub[1024]: a longer pattern makes the whole list fail
_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lowercase_ascii(text: str) -> str:
    """``text`` with A-Z lowered and nothing else changed (C's ``tolower`` in the C locale)."""
    return text.translate(_UPPER_TO_LOWER)


def host_port_name(host: str, port: int) -> str:
    """The name OpenSSH files a key under: ``host`` for port 22 (or 0), else ``[host]:port``."""
    return host if port in (0, 22) else f"[{host}]:{port}"


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def match_pattern(name: str, pattern: str) -> bool:
    """Whether ``name`` matches the glob ``pattern`` (``*`` and ``?`` only), case-sensitively."""
    return _compiled(pattern).fullmatch(name) is not None


def match_pattern_list(name: str, patterns: str, *, lower: bool = True) -> int:
    """Match ``name`` against a comma-separated pattern list, as ``match_pattern_list``.

    Returns:
        1 if a positive pattern matches and no negated one does, -1 if a negated pattern
        matches, 0 otherwise. With ``lower`` the patterns are ASCII-lowercased first.
    """
    got_positive = 0
    for raw in patterns.split(",") if patterns else ():
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if len(pattern) >= _MAX_PATTERN:
            return 0
        if match_pattern(name, lowercase_ascii(pattern) if lower else pattern):
            if negated:
                return -1
            got_positive = 1
    return got_positive


def hash_host_name(name: str, salt: bytes | None = None) -> str:
    """``name`` hashed as known_hosts stores it: ``|1|base64(salt)|base64(hmac-sha1)``.

    A new random salt is drawn unless ``salt`` (20 bytes) is given.
    """
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hmac.new(salt, name.encode("utf-8", "surrogateescape"), hashlib.sha1).digest()
    return f"{HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _salt_of(field: str) -> bytes | None:
    """The salt of a hashed field, or None if it is not a well-formed ``|1|salt|...``."""
    if not field.startswith(HASH_MAGIC):
        return None
    encoded, bar, _ = field[len(HASH_MAGIC) :].partition("|")
    if not bar or not 0 < len(encoded) <= 1024:
        return None
    try:
        salt = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return salt if len(salt) == _SALT_BYTES else None


def match_host_field(name: str, field: str) -> bool | None:
    """Whether a known_hosts host ``field`` names ``name`` (``match_maybe_hashed``).

    A field starting with ``|`` is one hashed name, compared whole; any other field is a
    pattern list, which matches only if no negated pattern matches. ``name`` should
    already be lowercased as OpenSSH lowercases host names.

    Returns:
        True or False; None when the field is a hashed name that cannot be decoded
        (OpenSSH counts such a line as invalid).
    """
    if field.startswith("|"):
        salt = _salt_of(field)
        if salt is None:
            return None
        return hash_host_name(name, salt) == field
    return match_pattern_list(lowercase_ascii(name), field) == 1
