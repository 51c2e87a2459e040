"""Host key decisions on known_hosts files in tmp_path (no sshd; see
test_ssh_hostkeys_openssh.py for the same decisions against OpenSSH's)."""

from __future__ import annotations

import base64
import pickle
import stat
import subprocess
from typing import TYPE_CHECKING, Any

import paramiko
import pytest
from structlog.testing import capture_logs

from actorcluster.errors import (
    HostKeyChangedError,
    HostKeyError,
    RevokedHostKeyError,
    UnknownHostKeyError,
)
from actorcluster.ssh import SshTarget
from actorcluster.ssh.hostkeys import host_key_name, preferred_key_types, verify_host_key
from actorcluster.ssh.hostmatch import hash_host_name, match_host_field
from actorcluster.ssh.known_hosts import lookup_known_hosts

if TYPE_CHECKING:
    from pathlib import Path

KEYGEN_TIMEOUT = 20
CERT = "ssh-ed25519-cert-v01@openssh.com"


@pytest.fixture(scope="module")
def rsa_key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(1024)


@pytest.fixture(scope="module")
def other_rsa_key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(1024)


def line(name: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker} {name} {key.get_name()} {key.get_base64()}\n".lstrip()


def target_for(
    files: list[Path], port: int = 22, accept_new: bool = False, **more: Any
) -> SshTarget:
    return SshTarget(
        alias="web",
        hostname=more.pop("hostname", "10.9.8.7"),
        port=port,
        user="u",
        known_hosts_files=tuple(map(str, files)),
        accept_new_host_keys=accept_new,
        **more,
    )


def test_openssh_files_keys_for_other_ports_under_bracketed_names() -> None:
    assert host_key_name("10.9.8.7", 22) == "10.9.8.7"
    assert host_key_name("10.9.8.7", 2222) == "[10.9.8.7]:2222"


def test_hashed_entries_and_later_files_are_found(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("# nothing for this host\n")
    second.write_text(line(hash_host_name("[10.9.8.7]:2222"), rsa_key))
    found = lookup_known_hosts(
        [str(tmp_path / "missing"), str(first), str(second)], "[10.9.8.7]:2222"
    )
    assert [(e.path, e.line, e.key.blob) for e in found] == [(str(second), 1, rsa_key.asbytes())]
    verify_host_key(target_for([first, second], port=2222), rsa_key)


def test_global_files_are_read_after_the_users_and_never_written(
    tmp_path: Path, rsa_key: paramiko.PKey, other_rsa_key: paramiko.PKey
) -> None:
    user, system = tmp_path / "user", tmp_path / "global"
    system.write_text(line("10.9.8.7", rsa_key))
    verify_host_key(target_for([user], global_known_hosts_files=(str(system),)), rsa_key)
    with pytest.raises(HostKeyChangedError, match="global"):
        verify_host_key(
            target_for([user], accept_new=True, global_known_hosts_files=(str(system),)),
            other_rsa_key,
        )
    assert not user.exists()


def test_a_key_filed_under_the_bare_name_vouches_for_other_ports_as_in_openssh(
    tmp_path: Path, rsa_key: paramiko.PKey, other_rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("10.9.8.7", rsa_key))
    verify_host_key(target_for([known], port=2222), rsa_key)
    with pytest.raises(UnknownHostKeyError, match=r"\[10\.9\.8\.7\]:2222"):
        verify_host_key(target_for([known], port=2222), other_rsa_key)
    verify_host_key(target_for([known], port=2222, accept_new=True), other_rsa_key)
    assert known.read_text().splitlines()[1] == line("[10.9.8.7]:2222", other_rsa_key).strip()


def test_the_unknown_key_error_names_the_three_ways_out(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    with pytest.raises(UnknownHostKeyError) as info:
        verify_host_key(target_for([known], port=2200), rsa_key)
    message = str(info.value)
    assert f"ssh-keyscan -p 2200 10.9.8.7 >> {known}" in message
    assert "StrictHostKeyChecking accept-new" in message
    assert "accept_new_host_keys=True" in message
    assert rsa_key.fingerprint in message
    assert info.value.args[0] == "web"
    assert pickle.loads(pickle.dumps(info.value)) == info.value


def test_with_no_user_file_a_new_key_cannot_be_trusted(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    with pytest.raises(UnknownHostKeyError, match="UserKnownHostsFile none"):
        verify_host_key(target_for([], accept_new=True), rsa_key)


def test_a_malformed_line_is_skipped_with_one_warning(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text("10.9.8.7 ssh-rsa !!!not-base64!!!\ngarbage\n" + line("10.9.8.7", rsa_key))
    with capture_logs() as logs:
        verify_host_key(target_for([known]), rsa_key)
        verify_host_key(target_for([known]), rsa_key)
    bad = [e for e in logs if e["event"] == "ssh.hostkey.bad_line"]
    assert [(e["line"], e["lines"]) for e in bad] == [(1, [1, 2])]


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
    assert f"{known}:1" in str(info.value)


def test_a_revoked_key_is_refused_whatever_else_says(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("*", rsa_key, "@revoked") + line("10.9.8.7", rsa_key))
    for trust in (False, True):
        with pytest.raises(RevokedHostKeyError) as info:
            verify_host_key(target_for([known], accept_new=trust), rsa_key)
        assert f"{known}:1" in str(info.value)
        assert "@revoked" in str(info.value)
    assert isinstance(info.value, HostKeyError)
    assert pickle.loads(pickle.dumps(info.value)) == info.value
    assert known.read_text().count("\n") == 2


def test_a_new_key_is_appended_to_the_first_file_on_a_new_line(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text("other.example ssh-rsa AAAA")  # no trailing newline
    with capture_logs() as logs:
        verify_host_key(target_for([known, tmp_path / "second"], accept_new=True), rsa_key)
    assert known.read_text().splitlines()[1] == line("10.9.8.7", rsa_key).strip()
    assert not (tmp_path / "second").exists()
    assert [e["names"] for e in logs if e["event"] == "ssh.hostkey.accepted"] == [["10.9.8.7"]]
    verify_host_key(target_for([known]), rsa_key)  # known now


def test_a_new_known_hosts_file_is_created_private(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "dir" / "kh"
    verify_host_key(target_for([known], port=2200, accept_new=True), rsa_key)
    assert known.read_text() == line("[10.9.8.7]:2200", rsa_key)
    assert stat.S_IMODE(known.stat().st_mode) == 0o600


def test_hash_known_hosts_records_a_hashed_name(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "kh"
    verify_host_key(target_for([known], accept_new=True, hash_known_hosts=True), rsa_key)
    field = known.read_text().split()[0]
    assert match_host_field("10.9.8.7", field) is True
    assert "10.9.8.7" not in known.read_text()


def test_host_key_alias_replaces_the_name_and_its_port(
    tmp_path: Path, rsa_key: paramiko.PKey, other_rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("[10.9.8.7]:2200", other_rsa_key) + line("box", rsa_key))
    verify_host_key(target_for([known], port=2200, host_key_alias="Box"), rsa_key)
    with pytest.raises(UnknownHostKeyError) as info:
        verify_host_key(target_for([known], port=2200, host_key_alias="other"), rsa_key)
    assert "| sed 's/^[^ ]*/other/'" in str(info.value)
    verify_host_key(target_for([known], host_key_alias="other", accept_new=True), rsa_key)
    assert known.read_text().splitlines()[-1] == line("other", rsa_key).strip()


def test_check_host_ip_records_a_known_hosts_new_address(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("web.example", rsa_key))
    target = target_for([known], hostname="Web.Example", check_host_ip=True)
    verify_host_key(target, rsa_key, "192.0.2.9")
    assert known.read_text().splitlines()[1] == line("192.0.2.9", rsa_key).strip()
    verify_host_key(target, rsa_key, "192.0.2.9")
    assert known.read_text().count("\n") == 2


def test_check_host_ip_refuses_a_key_that_differs_from_the_addresss(
    tmp_path: Path, rsa_key: paramiko.PKey, other_rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("web.example", rsa_key) + line("192.0.2.9", other_rsa_key))
    target = target_for([known], hostname="web.example", check_host_ip=True, accept_new=True)
    with pytest.raises(HostKeyChangedError, match=r"address 192\.0\.2\.9"):
        verify_host_key(target, rsa_key, "192.0.2.9")
    verify_host_key(target_for([known], hostname="web.example"), rsa_key, "192.0.2.9")  # off


def test_check_host_ip_records_host_and_address_on_one_line(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    target = target_for([known], 2200, True, hostname="web.example", check_host_ip=True)
    verify_host_key(target, rsa_key, "192.0.2.9")
    assert known.read_text() == line("[web.example]:2200,[192.0.2.9]:2200", rsa_key)


@pytest.mark.parametrize(("hostname", "address"), [("web.example", "127.0.0.2"), ("::1", "::1")])
def test_check_host_ip_skips_loopback_and_addresses_given_as_names(
    tmp_path: Path,
    rsa_key: paramiko.PKey,
    other_rsa_key: paramiko.PKey,
    hostname: str,
    address: str,
) -> None:
    known = tmp_path / "kh"
    known.write_text(line(hostname, rsa_key) + line(address, other_rsa_key))
    verify_host_key(target_for([known], hostname=hostname, check_host_ip=True), rsa_key, address)


def test_known_key_types_are_negotiated_first(tmp_path: Path, rsa_key: paramiko.PKey) -> None:
    known = tmp_path / "kh"
    known.write_text(line("10.9.8.7", rsa_key))
    offered = [f"ssh-ed25519{CERT[11:]}", "ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"]
    assert preferred_key_types(target_for([known]), offered) == [
        "rsa-sha2-512",
        CERT,
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
    ]
    assert preferred_key_types(target_for([known], host_key_alias="x"), offered) == offered


def test_a_cert_authority_puts_certificate_algorithms_first(
    tmp_path: Path, rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(line("*.example", rsa_key, "@cert-authority"))
    offered = ["ssh-ed25519", "rsa-sha2-512-cert-v01@openssh.com", CERT]
    target = target_for([known], hostname="web.example")
    assert preferred_key_types(target, offered) == [*offered[1:], "ssh-ed25519"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA and host certificates it signed for 10.9.8.7: valid, expired, a user one."""
    folder = tmp_path_factory.mktemp("certs")

    def keygen(*args: str) -> None:
        subprocess.run(["ssh-keygen", "-q", *args], check=True, timeout=KEYGEN_TIMEOUT)

    keygen("-t", "ed25519", "-N", "", "-f", str(folder / "ca"))
    made: dict[str, Any] = {"ca": (folder / "ca.pub").read_text()}
    for name, extra in {"valid": ["-h"], "expired": ["-h", "-V", "20000101:20010101"],
                        "user": [], "other": ["-h"]}.items():  # fmt: skip
        keygen("-t", "ed25519", "-N", "", "-f", str(folder / name))
        principal = "10.9.8.8" if name == "other" else "10.9.8.7"
        pub = str(folder / f"{name}.pub")
        keygen("-s", str(folder / "ca"), *extra, "-I", name, "-n", principal, pub)
        blob = base64.b64decode((folder / f"{name}-cert.pub").read_text().split()[1])
        made[name] = paramiko.Ed25519Key(msg=paramiko.Message(blob))
    return made


def test_a_certificate_signed_by_a_cert_authority_of_the_host_is_accepted(
    tmp_path: Path, certs: dict[str, Any]
) -> None:
    known = tmp_path / "kh"
    known.write_text(f"@cert-authority 10.9.8.* {certs['ca']}")
    with capture_logs() as logs:
        verify_host_key(target_for([known], accept_new=True), certs["valid"])
    assert [e["certificate"] for e in logs if e["event"] == "ssh.hostkey.verified"] == [True]
    assert known.read_text().count("\n") == 1  # nothing recorded


@pytest.mark.parametrize(
    ("cert", "why"),
    [
        ("expired", "expired"),
        ("user", "not a host certificate"),
        ("other", "10.9.8.7 is not a listed principal"),
    ],
)
def test_a_certificate_that_does_not_vouch_is_refused_naming_the_cert_authority(
    tmp_path: Path, certs: dict[str, Any], cert: str, why: str
) -> None:
    known = tmp_path / "kh"
    known.write_text(f"@cert-authority * {certs['ca']}")
    for trust in (False, True):
        with pytest.raises(UnknownHostKeyError) as info:
            verify_host_key(target_for([known], accept_new=trust), certs[cert])
        assert why in str(info.value)
        assert "@cert-authority" in str(info.value)
        assert f"{known}:1" in str(info.value)
    assert known.read_text().count("\n") == 1


def test_a_host_with_only_a_cert_authority_line_is_not_trusted_with_a_plain_key(
    tmp_path: Path, certs: dict[str, Any], rsa_key: paramiko.PKey
) -> None:
    known = tmp_path / "kh"
    known.write_text(f"@cert-authority * {certs['ca']}")
    with pytest.raises(UnknownHostKeyError, match="@cert-authority"):
        verify_host_key(target_for([known], accept_new=True), rsa_key)
    assert known.read_text().count("\n") == 1


def test_a_revoked_cert_authority_refuses_its_certificates(
    tmp_path: Path, certs: dict[str, Any]
) -> None:
    known = tmp_path / "kh"
    plain = certs["valid"]
    known.write_text(
        f"@cert-authority * {certs['ca']}@revoked * {certs['ca']}"
        + line("10.9.8.7", plain).replace(CERT, "ssh-ed25519")
    )
    with pytest.raises(RevokedHostKeyError, match="its certificate's CA"):
        verify_host_key(target_for([known]), plain)


def test_a_certificate_with_a_forged_signature_is_refused(
    tmp_path: Path, certs: dict[str, Any]
) -> None:
    blob = bytearray(certs["valid"].public_blob.key_blob)
    blob[-5] ^= 0xFF  # inside the CA's signature
    forged = paramiko.Ed25519Key(msg=paramiko.Message(bytes(blob)))
    known = tmp_path / "kh"
    known.write_text(f"@cert-authority * {certs['ca']}")
    with pytest.raises(HostKeyError, match="valid signature") as info:
        verify_host_key(target_for([known], accept_new=True), forged)
    assert type(info.value) is HostKeyError
