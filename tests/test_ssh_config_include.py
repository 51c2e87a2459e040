"""ssh_config's Include, followed as OpenSSH follows it: our resolution of every host is
checked against ``ssh -G`` on the same files, and the host list a RuntimeManager
discovers from holds the concrete Host names of included files too."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster.errors import ConfigurationError
from actorcluster.ssh import config_hosts, resolve_target

if TYPE_CHECKING:
    from pathlib import Path

SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(SSH is None, reason="the OpenSSH client is not installed")


def _openssh(config: Path, host: str) -> tuple[str, int, str]:
    """What OpenSSH resolves ``host`` to: (hostname, port, user)."""
    assert SSH is not None
    out = subprocess.run(
        [SSH, "-G", "-F", str(config), host], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    fields = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return fields["hostname"], int(fields["port"]), fields["user"]


def _ours(config: Path, host: str) -> tuple[str, int, str]:
    target = resolve_target(host, {"ssh_config_path": str(config)})
    return target.hostname, target.port, target.user


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def layered(tmp_path):
    """A config with a glob Include at the top, a conditional Include inside a Host
    block, a nested Include and a pattern."""
    d = tmp_path
    _write(d / "conf.d" / "10-a.conf", "Host alpha\n HostName 10.0.0.2\nHost beta\n Port 2203\n")
    _write(d / "conf.d" / "20-b.conf", "User globaluser\nHost gamma\n HostName 10.0.0.4\n")
    _write(d / "conf.d" / "ignored.txt", "Host never-included\n")
    _write(d / "web", f"Port 8022\nHost web-1 db-1\n HostName 10.1.1.1\nInclude {d}/deeper\n")
    _write(d / "deeper", "Host web-1\n User deepuser\nHost db-9\n HostName 10.9.9.9\n")
    return _write(
        d / "config",
        f"Include {d}/conf.d/*.conf\n"
        "Host direct\n HostName 10.0.0.1\n Port 2201\n"
        f"Host web-*\n User webuser\n Include {d}/web\n IdentityFile /tmp/k1\n"
        "Host *\n User defaultuser\n",
    )


@needs_ssh
@pytest.mark.parametrize(
    "host", ["alpha", "beta", "gamma", "direct", "web-1", "web-2", "db-1", "db-9", "other"]
)
def test_every_host_resolves_as_openssh_resolves_it(layered, host):
    assert _ours(layered, host) == _openssh(layered, host)


def test_the_host_list_holds_included_names_and_no_patterns(layered):
    # db-1 and db-9 sit in files included under `Host web-*`: no such host is configured.
    assert config_hosts(str(layered)) == ["alpha", "beta", "gamma", "direct", "web-1"]


def test_relative_includes_are_taken_from_the_users_ssh_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    _write(home / ".ssh" / "hosts" / "lab.conf", "Host lab-1\n HostName 10.3.3.3\n Port 2222\n")
    main = _write(tmp_path / "elsewhere" / "config", "Include hosts/*.conf ~/.ssh/none-such\n")
    assert config_hosts(str(main)) == ["lab-1"]
    target = resolve_target("lab-1", {"ssh_config_path": str(main)})
    assert (target.hostname, target.port) == ("10.3.3.3", 2222)


def test_a_missing_include_is_skipped_as_openssh_skips_it(tmp_path):
    main = _write(tmp_path / "config", f"Include {tmp_path}/nothing/*\nHost a\n Port 2000\n")
    assert config_hosts(str(main)) == ["a"]
    assert resolve_target("a", {"ssh_config_path": str(main)}).port == 2000


def test_an_include_loop_is_a_configuration_error_naming_the_depth(tmp_path):
    main = _write(tmp_path / "config", f"Host a\nInclude {tmp_path}/config\n")
    with pytest.raises(ConfigurationError, match="deeper than 16"):
        config_hosts(str(main))
    with pytest.raises(ConfigurationError, match="deeper than 16"):
        resolve_target("a", {"ssh_config_path": str(main)})


def test_an_unparsable_included_file_names_the_config(tmp_path):
    _write(tmp_path / "bad", "Host\n")
    main = _write(tmp_path / "config", f"Include {tmp_path}/bad\n")
    with pytest.raises(ConfigurationError, match="cannot read ssh_config"):
        config_hosts(str(main))


@needs_ssh
def test_a_match_block_in_an_included_file_applies_under_the_including_host(tmp_path):
    _write(tmp_path / "inc", "Match user special\n Port 3000\nMatch all\n Port 3001\n")
    main = _write(
        tmp_path / "config",
        f"Host a b\n User special\n Include {tmp_path}/inc\nHost c\n User other\n"
        f" Include {tmp_path}/inc\n",
    )
    for host in ("a", "b", "c", "d"):
        assert _ours(main, host) == _openssh(main, host)


# --- random configs against OpenSSH ---------------------------------------------------

_NAMES = ["h1", "h2", "h3", "h-x"]
_PATTERNS = [*_NAMES, "h*", "!h2", "*"]
_setting = st.sampled_from(["Port 2001", "Port 2002", "User u1", "User u2", "HostName 10.0.0.9"])


@st.composite
def _configs(draw):
    """Up to three files: blocks of random Host patterns and settings, and Include lines
    (at the top or inside a block) of later files."""
    files = []
    count = draw(st.integers(1, 3))
    for index in range(count):
        lines = []
        for _ in range(draw(st.integers(0, 3))):
            if index + 1 < count and draw(st.booleans()):
                lines.append(f"Include {{dir}}/f{draw(st.integers(index + 1, count - 1))}")
            patterns = draw(st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=2))
            if draw(st.booleans()):
                lines.append("Host " + " ".join(patterns))
            lines += [f" {setting}" for setting in draw(st.lists(_setting, max_size=2))]
        files.append("\n".join(lines) + "\n")
    return files


@needs_ssh
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=_configs())
def test_random_configs_with_includes_resolve_as_openssh_resolves_them(tmp_path_factory, files):
    directory = tmp_path_factory.mktemp("cfg")
    for index, text in enumerate(files):
        _write(directory / f"f{index}", text.replace("{dir}", str(directory)))
    for host in _NAMES:
        assert _ours(directory / "f0", host) == _openssh(directory / "f0", host), host
