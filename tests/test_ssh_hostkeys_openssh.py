"""Host key verdicts against OpenSSH's: the same files, read by ``ssh`` and by us.

Each row writes known_hosts files and an ssh_config for ``host-1`` (a real sshd of the
bed), runs the OpenSSH client on them (its verdict is the oracle), puts the files back,
then connects with actorcluster, and asserts that both accept or both refuse, and that
both recorded the same lines (or both nothing). The rows marked ``stricter`` are where
we refuse on purpose what OpenSSH accepts; the test checks that OpenSSH still does.
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from actorcluster.errors import HostKeyError
from actorcluster.ssh import connect, resolve_target
from actorcluster.ssh.hostmatch import match_host_field
from sshbed import SshBed, write_ed25519_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from sshbed import SshHost

SSH_TIMEOUT = 20
FILES = ("kh", "kh2", "global")


@dataclass(frozen=True)
class Keys:
    """What a row's files are written from."""

    host: SshHost
    key: str  # the host's real key, "ssh-ed25519 AAAA..."
    other: str  # another ed25519 key
    ecdsa: str  # an ECDSA key
    ca: str  # the CA that signed the cert bed's host keys

    @property
    def name(self) -> str:
        return f"[{self.host.address}]:{self.host.port}"

    @property
    def addr(self) -> str:
        return self.host.address

    @property
    def port(self) -> int:
        return self.host.port


@dataclass(frozen=True)
class Row:
    """One known_hosts situation and the verdict both clients must reach."""

    id: str
    files: Callable[[Keys], dict[str, str]]
    accept: bool
    strict: str = "yes"
    user_files: str = "kh"
    global_files: str = "none"
    options: str = ""
    bed: str = "plain"  # "cert": host-1 has a valid certificate, host-2 an expired one
    host: str = "host-1"
    hashed: bool = False  # hash the files with ssh-keygen -H before the run
    bad_lines: int = 0
    stricter: bool = False
    certificate: bool = False  # accepted through the host certificate


ROWS = [
    Row("plain-match", lambda k: {"kh": f"{k.name} {k.key}\n"}, accept=True),
    Row("unknown", lambda k: {"kh": ""}, accept=False),
    Row("unknown-accept-new", lambda k: {"kh": ""}, accept=True, strict="accept-new"),
    Row("revoked-and-plain", lambda k: {"kh": f"@revoked * {k.key}\n{k.name} {k.key}\n"}, False),
    Row(
        "revoked-only-accept-new",
        lambda k: {"kh": f"@revoked {k.name} {k.key}\n"},
        accept=False,
        strict="accept-new",
    ),
    Row(
        "pattern-with-another-key-accept-new",
        lambda k: {"kh": f"[127.0.0.*]:{k.port} {k.other}\n"},
        accept=False,
        strict="accept-new",
    ),
    Row("pattern-match", lambda k: {"kh": f"[127.0.0.*]:{k.port} {k.key}\n"}, accept=True),
    Row("wildcard-match", lambda k: {"kh": f"nothing,[127.0.0.?]:{k.port} {k.key}\n"}, True),
    Row("star-matches-all", lambda k: {"kh": f"* {k.key}\n"}, accept=True),
    Row("negated-host-is-excluded", lambda k: {"kh": f"*,!*{k.addr}* {k.key}\n"}, accept=False),
    Row(
        "negating-host-port-leaves-the-bare-name-to-star",  # the port-less retry matches *
        lambda k: {"kh": f"*,!{k.name} {k.key}\n"},
        accept=True,
    ),
    Row(
        "negated-line-does-not-block-accept-new",
        lambda k: {"kh": f"[127.0.0.*]:{k.port},!{k.name} {k.other}\n"},
        accept=True,
        strict="accept-new",
    ),
    Row("hashed-match", lambda k: {"kh": f"{k.name} {k.key}\n"}, accept=True, hashed=True),
    Row(
        "hashed-another-key-accept-new",
        lambda k: {"kh": f"other.example {k.key}\n{k.name} {k.other}\n"},
        accept=False,
        strict="accept-new",
        hashed=True,
    ),
    Row(
        "oddly-spaced",
        lambda k: {"kh": "\t  {}\t\t{}   {}\t comment words\n".format(k.name, *k.key.split())},
        accept=True,
    ),
    Row(
        "revoked-marker-ended-by-a-tab-is-ignored",  # OpenSSH looks for a space first
        lambda k: {"kh": f"@revoked\t{k.name} {k.key}\n{k.name} {k.key}\n"},
        accept=True,
        bad_lines=1,
    ),
    Row(
        "comments-of-many-words",
        lambda k: {"kh": f"# a comment of many words\n\n  # and @revoked more\n{k.name} {k.key}\n"},
        accept=True,
    ),
    Row(
        "malformed-lines-are-skipped",
        lambda k: {"kh": f"{k.name} ssh-ed25519 !!!\n{k.name}\n{k.name} {k.key}\n"},
        accept=True,
        bad_lines=1,
    ),
    Row(
        "second-file", lambda k: {"kh": "", "kh2": f"{k.name} {k.key}\n"}, True, user_files="kh kh2"
    ),
    Row(
        "second-file-another-key-accept-new",
        lambda k: {"kh": "", "kh2": f"{k.name} {k.other}\n"},
        accept=False,
        strict="accept-new",
        user_files="kh kh2",
    ),
    Row(
        "new-key-recorded-in-the-first-file",
        lambda k: {"kh2": ""},
        accept=True,
        strict="accept-new",
        user_files="kh kh2",
    ),
    Row(
        "global-file",
        lambda k: {"kh": "", "global": f"{k.name} {k.key}\n"},
        True,
        global_files="global",
    ),
    Row(
        "global-file-another-key-accept-new",
        lambda k: {"kh": "", "global": f"{k.name} {k.other}\n"},
        accept=False,
        strict="accept-new",
        global_files="global",
    ),
    Row(
        "no-user-file-cannot-accept-new",
        lambda k: {},
        accept=False,
        strict="accept-new",
        user_files="none",
    ),
    Row(
        "host-key-alias",
        lambda k: {"kh": f"myalias {k.key}\n{k.name} {k.other}\n"},
        accept=True,
        options="HostKeyAlias myalias",
    ),
    Row(
        "host-key-alias-accept-new-records-the-alias",
        lambda k: {"kh": f"{k.name} {k.key}\n"},
        accept=True,
        strict="accept-new",
        options="HostKeyAlias MyAlias",
    ),
    Row(
        "changed-key-accept-new",
        lambda k: {"kh": f"{k.name} {k.other}\n"},
        accept=False,
        strict="accept-new",
    ),
    Row("changed-key-of-another-type", lambda k: {"kh": f"{k.name} {k.ecdsa}\n"}, accept=False),
    Row("bare-name-vouches-for-any-port", lambda k: {"kh": f"{k.addr} {k.key}\n"}, accept=True),
    Row(
        "another-key-for-the-bare-name-does-not-block-accept-new",
        lambda k: {"kh": f"{k.addr} {k.other}\n"},
        accept=True,
        strict="accept-new",
    ),
    Row(
        "check-host-ip-is-off-for-loopback",
        lambda k: {"kh": f"{k.name} {k.key}\n[{k.addr}]:{k.port} {k.other}\n"},
        accept=True,
        options="CheckHostIP yes",
    ),
    Row(
        "hash-known-hosts-records-hashed",
        lambda k: {"kh": ""},
        accept=True,
        strict="accept-new",
        options="HashKnownHosts yes",
    ),
    Row(
        "cert-authority",
        lambda k: {"kh": f"@cert-authority * {k.ca}\n"},
        accept=True,
        bed="cert",
        certificate=True,
    ),
    Row(
        "cert-authority-and-plain-key",
        lambda k: {"kh": f"{k.name} {k.key}\n@cert-authority * {k.ca}\n"},
        accept=True,
        bed="cert",
        certificate=True,
    ),
    Row("plain-key-of-a-certified-host", lambda k: {"kh": f"{k.name} {k.key}\n"}, True, bed="cert"),
    Row(
        "cert-authority-for-other-hosts",
        lambda k: {"kh": f"@cert-authority *.example {k.ca}\n"},
        accept=False,
        bed="cert",
    ),
    Row(
        "cert-authority-negated-for-this-host",
        lambda k: {"kh": f"@cert-authority !*{k.addr}*,* {k.ca}\n"},
        accept=False,
        bed="cert",
    ),
    Row(
        "cert-for-another-principal",
        lambda k: {"kh": f"@cert-authority * {k.ca}\n"},
        accept=False,
        bed="cert",
        options="HostKeyAlias other-name",
    ),
    Row(
        "cert-for-another-principal-but-plain-key-known",
        lambda k: {"kh": f"@cert-authority * {k.ca}\nother-name {k.key}\n"},
        accept=True,
        bed="cert",
        options="HostKeyAlias other-name",
    ),
    Row(
        "expired-cert",
        lambda k: {"kh": f"@cert-authority * {k.ca}\n"},
        accept=False,
        bed="cert",
        host="host-2",
    ),
    Row(
        "revoked-cert-authority-beats-a-plain-entry",
        lambda k: {"kh": f"@cert-authority * {k.ca}\n@revoked * {k.ca}\n{k.name} {k.key}\n"},
        accept=False,
        bed="cert",
    ),
    Row(
        "cert-authority-host-is-not-recorded-by-accept-new",
        lambda k: {"kh": f"@cert-authority * {k.ca}\n"},
        accept=False,
        strict="accept-new",
        bed="cert",
        host="host-2",
        stricter=True,
    ),
    Row(
        "revoked-for-the-bare-name-refuses-accept-new",
        lambda k: {"kh": f"@revoked {k.addr} {k.key}\n"},
        accept=False,
        strict="accept-new",
        stricter=True,
    ),
]


def _public(path: Path) -> str:
    return " ".join(path.read_text().split()[:2])


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostkey_keys")
    write_ed25519_key(folder / "other", "other")
    write_ed25519_key(folder / "ca", "ca")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(folder / "ecdsa")],
        check=True,
        timeout=SSH_TIMEOUT,
    )
    return folder


@pytest.fixture(scope="module")
def ssh_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshBed]:
    """Three hosts on loopback whatever ``ACTORCLUSTER_TEST_ISOLATED`` says: the rows'
    known_hosts patterns name loopback addresses and ``[address]:port`` forms (what they
    test is how a known_hosts line matches, not the network)."""
    with SshBed(tmp_path_factory.mktemp("loopback_bed"), count=3, isolated=False) as bed:
        yield bed


@pytest.fixture(scope="module")
def cert_bed(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[SshBed]:
    """Two hosts with host certificates signed by ``keys_dir/ca``: host-1's valid for
    127.0.0.2, host-2's expired."""
    with SshBed(tmp_path_factory.mktemp("cert_bed"), count=2, isolated=False) as bed:
        for host, validity in zip(bed.hosts, ("always:forever", "20000101:20010101"), strict=True):
            subprocess.run(
                ["ssh-keygen", "-q", "-s", str(keys_dir / "ca"), "-h", "-I", host.name,
                 "-n", host.address, "-V", validity, f"{host.host_key_path}.pub"],
                check=True,
                timeout=SSH_TIMEOUT,
            )  # fmt: skip
            host.configure(f"HostCertificate {host.host_key_path}-cert.pub\n")
        yield bed


def _ssh_config(row: Row, bed: SshBed, host: SshHost, folder: Path) -> Path:
    def files(spec: str) -> str:
        return " ".join(str(folder / f) if f != "none" else f for f in spec.split())

    config = folder / "ssh_config"
    config.write_text(
        f"Host {row.host}\n  HostName {host.address}\n  Port {host.port}\n  User {bed.user}\n"
        f"  IdentityFile {bed.client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {files(row.user_files)}\n"
        f"  GlobalKnownHostsFile {files(row.global_files)}\n"
        f"  StrictHostKeyChecking {row.strict}\n  UpdateHostKeys no\n  BatchMode yes\n"
        + "".join(f"  {line}\n" for line in row.options.splitlines())
    )
    return config


def _snapshot(folder: Path) -> dict[str, str | None]:
    return {f: (folder / f).read_text() if (folder / f).exists() else None for f in FILES}


def _restore(folder: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        path = folder / name
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)


def _run_openssh(config: Path, host: str) -> bool:
    done = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", host, "true"],
        capture_output=True,
        text=True,
        timeout=SSH_TIMEOUT,
        check=False,
    )
    assert done.returncode in (0, 255), done.stderr
    return done.returncode == 0


def _run_ours(config: Path, host: str) -> tuple[bool, list[dict[str, object]]]:
    with capture_logs() as logs:
        try:
            with connect(resolve_target(host, {"ssh_config_path": str(config)})):
                return True, logs
        except HostKeyError:
            return False, logs


def _recorded(before: dict[str, str | None], after: dict[str, str | None]) -> dict[str, str]:
    """What a client appended to each file."""
    return {f: (after[f] or "")[len(before[f] or "") :] for f in FILES if after[f] != before[f]}


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_we_reach_the_verdict_openssh_reaches(
    row: Row, ssh_bed: SshBed, cert_bed: SshBed, keys_dir: Path, tmp_path: Path
) -> None:
    bed = cert_bed if row.bed == "cert" else ssh_bed
    host = next(h for h in bed.hosts if h.name == row.host)
    keys = Keys(
        host=host,
        key=" ".join(host.host_public_key.split()[:2]),
        other=_public(keys_dir / "other.pub"),
        ecdsa=_public(keys_dir / "ecdsa.pub"),
        ca=_public(keys_dir / "ca.pub"),
    )
    for name, text in row.files(keys).items():
        (tmp_path / name).write_text(text)
        if row.hashed:
            subprocess.run(["ssh-keygen", "-H", "-f", str(tmp_path / name)], check=True,
                           capture_output=True, timeout=SSH_TIMEOUT)  # fmt: skip
            (tmp_path / f"{name}.old").unlink()
    config = _ssh_config(row, bed, host, tmp_path)
    before = _snapshot(tmp_path)

    theirs = _run_openssh(config, row.host)
    their_record = _recorded(before, _snapshot(tmp_path))
    _restore(tmp_path, before)
    ours, logs = _run_ours(config, row.host)
    our_record = _recorded(before, _snapshot(tmp_path))

    assert (ours, theirs) == (row.accept, not row.accept if row.stricter else row.accept)
    if row.stricter:
        assert their_record and not our_record
        return
    assert our_record.keys() == their_record.keys()
    if "HashKnownHosts yes" in row.options:
        for text in (our_record["kh"], their_record["kh"]):
            assert match_host_field(keys.name, text.split()[0]) is True
            assert text.split()[1:] == keys.key.split()
    else:
        assert our_record == their_record
    bad = [e for e in logs if e["event"] == "ssh.hostkey.bad_line"]
    assert len(bad) == row.bad_lines, bad
    verified = [e for e in logs if e["event"] == "ssh.hostkey.verified"]
    assert [e["certificate"] for e in verified] == ([row.certificate] if row.accept else [])


def test_the_oracle_sees_what_it_should(ssh_bed: SshBed) -> None:
    """The table means something only if ssh really reads the files it is given."""
    host = ssh_bed.hosts[0]
    assert base64.b64decode(host.host_public_key.split()[1])
    assert _run_openssh(ssh_bed.ssh_config, "host-1")
