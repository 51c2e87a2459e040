"""ssh_config's host key settings, resolved into SshTargets as ssh -G reads them (no sshd)."""

from __future__ import annotations

import getpass
import os
import pwd
import socket
import subprocess
from typing import TYPE_CHECKING

import pytest

from actorcluster.errors import ConfigurationError
from actorcluster.ssh import CONFIG_ENV_VAR, resolve_target

if TYPE_CHECKING:
    from pathlib import Path

SSH_G_TIMEOUT = 20


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty home directory, and no ACTORCLUSTER_SSH_CONFIG."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    return path


def ssh_g(config: Path, host: str) -> dict[str, str]:
    """What OpenSSH makes of ``config`` for ``host`` (``ssh -G``), key -> value."""
    out = subprocess.run(
        ["ssh", "-G", "-F", str(config), host],
        capture_output=True,
        text=True,
        check=True,
        timeout=SSH_G_TIMEOUT,
    ).stdout
    return dict(line.partition(" ")[::2] for line in out.splitlines())


def test_the_defaults_are_openssh_s(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text("Host h\n  HostName 10.1.2.3\n")
    target = resolve_target("h", {"ssh_config_path": str(config)})
    openssh = ssh_g(config, "h")
    ssh_home = pwd.getpwuid(os.getuid()).pw_dir  # ssh's ~ is the passwd entry's, not $HOME
    assert target.known_hosts_files == tuple(
        path.replace(ssh_home, str(home), 1) for path in openssh["userknownhostsfile"].split()
    )
    assert " ".join(target.global_known_hosts_files) == openssh["globalknownhostsfile"]
    assert target.check_host_ip is (openssh["checkhostip"] == "yes")
    assert target.hash_known_hosts is (openssh["hashknownhosts"] == "yes")
    assert target.host_key_alias is None


def test_host_key_settings_are_read(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text(
        "Host h\n  HostName 10.1.2.3\n  Port 2200\n  User alice\n"
        '  UserKnownHostsFile ~/kh "/with space/kh" /k/%h-%p-%r-%n-%k-%u-%%\n'
        "  GlobalKnownHostsFile /etc/a /etc/b\n  HostKeyAlias box\n  CheckHostIP yes\n"
        "  HashKnownHosts yes\n"
    )
    target = resolve_target("h", {"ssh_config_path": str(config)})
    assert target.known_hosts_files == (
        f"{home}/kh",
        "/with space/kh",
        f"/k/10.1.2.3-2200-alice-h-box-{getpass.getuser()}-%",
    )
    assert target.global_known_hosts_files == ("/etc/a", "/etc/b")
    assert (target.host_key_alias, target.check_host_ip, target.hash_known_hosts) == (
        "box",
        True,
        True,
    )


def test_tokens_and_environment_variables_expand_as_ssh_expands_them(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KH_DIR", str(tmp_path / "env"))
    config = tmp_path / "cfg"
    config.write_text("Host h\n  HostName 10.1.2.3\n  UserKnownHostsFile ${KH_DIR}/%L/%i/kh\n")
    target = resolve_target("h", {"ssh_config_path": str(config)})
    short = socket.gethostname().split(".")[0]
    assert target.known_hosts_files == (f"{tmp_path}/env/{short}/{os.getuid()}/kh",)
    assert ssh_g(config, "h")["userknownhostsfile"] == target.known_hosts_files[0]


def test_none_means_no_file(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text("Host h\n  UserKnownHostsFile none\n  GlobalKnownHostsFile None\n")
    target = resolve_target("h", {"ssh_config_path": str(config)})
    assert (target.known_hosts_files, target.global_known_hosts_files) == ((), ())


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("UserKnownHostsFile none /kh", "none with other files"),
        ("GlobalKnownHostsFile none /kh", "none with other files"),
        ("UserKnownHostsFile /kh/%z", "unknown token %z"),
        ("UserKnownHostsFile ${NO_SUCH_VARIABLE_HERE}/kh", "not set"),
        ("CheckHostIP maybe", "checkhostip"),
    ],
)
def test_invalid_host_key_settings_raise_naming_them(
    home: Path, tmp_path: Path, line: str, why: str
) -> None:
    config = tmp_path / "cfg"
    config.write_text(f"Host h\n  {line}\n")
    with pytest.raises(ConfigurationError, match=why):
        resolve_target("h", {"ssh_config_path": str(config)})


def test_the_known_hosts_kwarg_replaces_the_user_files_only(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text("Host h\n  UserKnownHostsFile /cfg/kh\n  GlobalKnownHostsFile /cfg/g\n")
    target = resolve_target("h", {"ssh_config_path": str(config), "known_hosts": "~/mine"})
    assert target.known_hosts_files == (f"{home}/mine",)
    assert target.global_known_hosts_files == ("/cfg/g",)
