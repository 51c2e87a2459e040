"""known_hosts lookups and host key decisions, on files in tmp_path (no sshd)."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import paramiko
import pytest
from structlog.testing import capture_logs

from actorcluster.errors import HostKeyChangedError, UnknownHostKeyError
from actorcluster.ssh import SshTarget
from actorcluster.ssh.hostkeys import (
    host_key_name,
    known_keys,
    preferred_key_types,
    verify_host_key,
)

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def rsa_key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(1024)


@pytest.fixture(scope="module")
def other_rsa_key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(1024)


def line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


def target_for(files: list[Path], port: int = 22, accept_new: bool = False) -> SshTarget:
    return SshTarget(
        alias="web",
        hostname="10.9.8.7",
        port=port,
        user="u",
        known_hosts_files=tuple(map(str, files)),
        accept_new_host_keys=accept_new,
    )


def test_openssh_files_keys_for_other_ports_under_bracketed_names() -> None:
    assert host_key_name("10.9.8.7", 22) == "10.9.8.7"
    assert host_key_name("10.9.8.7", 2222) == "[10.9.8.7]:2222"


def test_hashed_entries_and_later_files_are_found(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("# nothing for this host\n")
    hashed = paramiko.HostKeys.hash_host("[10.9.8.7]:2222")
    second.write_text(line(hashed, rsa_key))
    assert known_keys([str(tmp_path / "missing"), str(first), str(second)], "[10.9.8.7]:2222") == [
        (str(second), rsa_key)
    ]
    verify_host_key(target_for([first, second], port=2222), rsa_key)


def test_a_key_filed_for_port_22_does_not_vouch_for_another_port(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("10.9.8.7", rsa_key))
    verify_host_key(target_for([known]), rsa_key)
    with pytest.raises(UnknownHostKeyError, match=r"\[10\.9\.8\.7\]:2222"):
        verify_host_key(target_for([known], port=2222), rsa_key)


def test_malformed_lines_are_skipped_with_a_warning(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "kh"
    known.write_text("10.9.8.7 ssh-rsa !!!not-base64!!!\ngarbage\n" + line("10.9.8.7", rsa_key))
    with capture_logs() as logs:
        verify_host_key(target_for([known]), rsa_key)
    assert any(e["event"] == "ssh.hostkey.bad_line" and e["line"] == 1 for e in logs)


def test_a_different_key_of_the_same_type_is_a_changed_key(
    tmp_path: Path, rsa_key: paramiko.PKey, other_rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("10.9.8.7", rsa_key))
    with pytest.raises(HostKeyChangedError) as info:
        verify_host_key(target_for([known], accept_new=True), other_rsa_key)
    assert info.value.args[0] == "web"
    assert info.value.args[2] == str(known)
    assert rsa_key.fingerprint in str(info.value)
    assert other_rsa_key.fingerprint in str(info.value)


def test_a_new_key_is_appended_to_the_first_file_on_a_new_line(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text("other.example ssh-rsa AAAA")  # no trailing newline
    verify_host_key(target_for([known, tmp_path / "second"], accept_new=True), rsa_key)
    assert known.read_text().splitlines()[1] == line("10.9.8.7", rsa_key).strip()
    assert not (tmp_path / "second").exists()
    verify_host_key(target_for([known]), rsa_key)  # known now


def test_a_new_known_hosts_file_is_created_private(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "dir" / "kh"
    verify_host_key(target_for([known], port=2200, accept_new=True), rsa_key)
    assert known.read_text() == line("[10.9.8.7]:2200", rsa_key)
    assert stat.S_IMODE(known.stat().st_mode) == 0o600


def test_known_key_types_are_negotiated_first(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "kh"
    known.write_text(line("10.9.8.7", rsa_key))
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert preferred_key_types([str(known)], "10.9.8.7", offered) == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
    ]
    assert preferred_key_types([str(known)], "elsewhere", offered) == offered
