"""The known_hosts parser and the host pattern matcher, against OpenSSH's rules (no sshd)."""

from __future__ import annotations

import base64
import subprocess
from typing import TYPE_CHECKING

import paramiko
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from actorcluster.ssh.hostmatch import (
    hash_host_name,
    host_port_name,
    match_host_field,
    match_pattern,
    match_pattern_list,
)
from actorcluster.ssh.keyblobs import PublicKey, encode_mpint, encode_string, parse_key_blob
from actorcluster.ssh.known_hosts import (
    append_known_host,
    load_known_hosts,
    lookup_known_hosts,
    parse_known_hosts,
)

if TYPE_CHECKING:
    from pathlib import Path

KEYGEN_TIMEOUT = 20

NAMES = st.from_regex(r"\A(\[[a-z0-9.-]{1,20}\]:[0-9]{1,5}|[a-z0-9.-]{1,30})\Z")
PATTERNS = st.from_regex(r"\A[a-z0-9.*?\[\]:-]{1,12}\Z")


def ed25519() -> PublicKey:
    """A new ed25519 public key."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    text = public.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return parse_key_blob(base64.b64decode(text.split()[1]))


@pytest.fixture(scope="module")
def key() -> PublicKey:
    return ed25519()


@pytest.fixture(scope="module")
def other() -> PublicKey:
    return PublicKey.from_paramiko(paramiko.ECDSAKey.generate())


def test_port_22_uses_the_bare_name_and_others_the_bracketed_one() -> None:
    assert host_port_name("web", 22) == "web"
    assert host_port_name("web", 0) == "web"
    assert host_port_name("web", 2222) == "[web]:2222"


@pytest.mark.parametrize(
    ("name", "patterns", "result"),
    [
        ("web.example", "web.example", 1),
        ("web.example", "*.example", 1),
        ("web.example", "w?b.*", 1),
        ("web.example", "WEB.Example", 1),  # patterns are lowercased, as OpenSSH does
        ("web.example", "*.other", 0),
        ("web.example", "*,!web.example", -1),
        ("web.example", "!web.example", -1),
        ("db.example", "*,!web.example", 1),
        ("[127.0.0.2]:2222", "[127.0.0.*]:2222", 1),
        ("[127.0.0.2]:2222", "127.0.0.2", 0),
        ("web", "", 0),
        ("web", "web,," + "x" * 1023, 0),  # a pattern too long for OpenSSH fails the list
    ],
)
def test_pattern_lists_match_as_openssh_match_pattern_list(
    name: str, patterns: str, result: int
) -> None:
    assert match_pattern_list(name, patterns) == result


@given(name=NAMES, patterns=st.lists(PATTERNS, min_size=1, max_size=4), negated=PATTERNS)
def test_a_matching_negated_pattern_always_wins(
    name: str, patterns: list[str], negated: str
) -> None:
    field = ",".join([*patterns, "!" + negated])
    if match_pattern(name, negated):
        assert match_host_field(name, field) is False
    else:
        assert match_host_field(name, field) is any(match_pattern(name, p) for p in patterns)


@given(name=NAMES)
def test_every_name_matches_star_and_itself(name: str) -> None:
    assert match_host_field(name, "*") is True
    assert match_host_field(name, name) is True
    assert match_host_field(name, f"*,!{name}") is False


@given(name=NAMES, other=NAMES)
def test_a_hashed_name_matches_itself_and_nothing_else(name: str, other: str) -> None:
    field = hash_host_name(name)
    assert field.startswith("|1|")
    assert match_host_field(name, field) is True
    assert match_host_field(other, field) is (other == name)
    assert hash_host_name(name) != field  # a fresh salt each time


def test_a_name_hashed_by_ssh_keygen_matches(tmp_path: Path, key: PublicKey) -> None:
    known = tmp_path / "kh"
    known.write_text(f"[10.1.2.3]:2222 {key.text}\n")
    subprocess.run(
        ["ssh-keygen", "-H", "-f", str(known)],
        check=True,
        capture_output=True,
        timeout=KEYGEN_TIMEOUT,
    )
    field = known.read_text().split()[0]
    assert field.startswith("|1|")
    assert match_host_field("[10.1.2.3]:2222", field) is True
    assert match_host_field("10.1.2.3", field) is False


@pytest.mark.parametrize("field", ["|1|not-base64|abc", "|1|c2hvcnQ=|abc", "|2|x|y", "|1|"])
def test_a_hashed_field_that_cannot_be_decoded_is_invalid(field: str) -> None:
    assert match_host_field("web", field) is None


def test_lines_are_read_as_openssh_reads_them(key: PublicKey, other: PublicKey) -> None:
    text = (
        "# a comment of many many words, even @revoked ones\n"
        "\n"
        "   \t  \n"
        f"  \tweb,db  \t {key.text}   trailing comment words\n"
        f"@revoked   * {other.text}\n"
        f"@cert-authority  *.example {key.text}\r\n"
        f"|1|{base64.b64encode(bytes(20)).decode()}|{base64.b64encode(bytes(20)).decode()} "
        f"{key.text}\n"
        f"@revoked\t* {other.text}\n"  # OpenSSH ends a marker at the first space, not tab
    )
    entries, bad = parse_known_hosts(text, "kh")
    assert [(e.line, e.marker, e.hosts, e.key) for e in entries] == [
        (4, "", "web,db", key),
        (5, "@revoked", "*", other),
        (6, "@cert-authority", "*.example", key),
        (7, "", entries[3].hosts, key),
    ]
    assert bad == ((8, "unknown marker '@revoked\\t*'"),)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("web", "no key"),
        ("web ssh-ed25519", "without key data"),
        ("web ssh-ed25519 !!!not-base64!!!", "base64"),
        ("web ssh-ed25519 AAAA", "truncated"),
        ("web no-such-type AAAA", "unknown key type"),
        ("@revoked", "marker"),
        ("@revoked @revoked web KEY", "more than one marker"),
        ("@trusted web KEY", "unknown marker"),
        ("|1|bad|hash KEY", "hashed"),
        ("web ecdsa-sha2-nistp256 ED25519", "does not match"),
    ],
)
def test_malformed_lines_are_reported_with_a_reason(key: PublicKey, line: str, why: str) -> None:
    _, blob = key.text.split()
    line = line.replace("KEY", key.text).replace("ED25519", blob)
    entries, bad = parse_known_hosts(line + "\n", "kh")
    assert entries == ()
    assert [number for number, _ in bad] == [1]
    assert why in bad[0][1]


def test_rsa_aliases_and_key_types_paramiko_cannot_use_are_still_keys(tmp_path: Path) -> None:
    rsa = PublicKey.from_paramiko(paramiko.RSAKey.generate(1024))
    entries, bad = parse_known_hosts(f"web rsa-sha2-512 {rsa.text.split()[1]}\n", "kh")
    assert bad == ()
    assert entries[0].key == rsa
    path = tmp_path / "sk"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "dsa", "-N", "", "-f", str(path)],
        check=False,
        capture_output=True,
        timeout=KEYGEN_TIMEOUT,
    )
    if path.with_suffix(".pub").exists():  # ssh-dss: OpenSSH still reads it, paramiko no more
        entries, bad = parse_known_hosts(f"web {path.with_suffix('.pub').read_text()}", "kh")
        assert bad == ()
        assert entries[0].key.kind == "ssh-dss"


def test_an_rsa_key_shorter_than_openssh_accepts_is_a_bad_line() -> None:
    blob = encode_string(b"ssh-rsa") + encode_mpint(65537) + encode_mpint(2**767 + 1)
    entries, bad = parse_known_hosts(f"web ssh-rsa {base64.b64encode(blob).decode()}\n", "kh")
    assert entries == ()
    assert "1024" in bad[0][1]


def test_keys_compare_by_value_whatever_the_line_says(key: PublicKey) -> None:
    assert parse_key_blob(key.blob) == key
    assert key.fingerprint == paramiko.PKey.from_type_string(key.kind, key.blob).fingerprint


def test_a_file_is_parsed_and_its_bad_lines_reported_once_per_content(
    tmp_path: Path, key: PublicKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(f"garbage\n# three word comment\nweb {key.text}\nweb ssh-rsa AAAA\n")
    with capture_logs() as logs:
        for _ in range(3):
            assert [e.line for e in lookup_known_hosts([str(known)], "web")] == [3]
        known.write_text(known.read_text() + "more garbage\n")
        load_known_hosts(str(known))
    bad = [e for e in logs if e["event"] == "ssh.hostkey.bad_line"]
    assert [(e["lines"], e["count"]) for e in bad] == [([1, 4], 2), ([1, 4, 5], 3)]
    assert bad[0]["known_hosts"] == str(known)


def test_comments_and_blank_lines_are_silent(tmp_path: Path, key: PublicKey) -> None:
    known = tmp_path / "kh"
    known.write_text(f"# one\n\n#two words\n  # three words here\n\t\nweb {key.text}\n")
    with capture_logs() as logs:
        assert len(load_known_hosts(str(known))) == 1
    assert logs == []


def test_missing_files_are_empty_and_unreadable_ones_reported_once(tmp_path: Path) -> None:
    assert load_known_hosts(str(tmp_path / "missing")) == ()
    with capture_logs() as logs:
        assert load_known_hosts(str(tmp_path)) == ()  # a directory: unreadable
        assert load_known_hosts(str(tmp_path)) == ()
    assert [e["event"] for e in logs] == ["ssh.hostkey.file_unreadable"]


def test_recorded_names_are_one_line_or_hashed_one_line_each(
    tmp_path: Path, key: PublicKey
) -> None:
    plain, hashed = tmp_path / "a" / "kh", tmp_path / "kh2"
    hashed.write_text("other ssh-ed25519 AAAA")  # no newline at the end
    append_known_host(str(plain), ["web", "10.1.2.3"], key, hashed=False)
    append_known_host(str(hashed), ["web", "10.1.2.3"], key, hashed=True)
    assert plain.read_text() == f"web,10.1.2.3 {key.text}\n"
    lines = hashed.read_text().splitlines()
    assert lines[0] == "other ssh-ed25519 AAAA"
    assert match_host_field("web", lines[1].split()[0]) is True
    assert match_host_field("10.1.2.3", lines[2].split()[0]) is True
