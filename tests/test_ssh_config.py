"""Resolving hosts into SshTargets: ssh_config files, ssh_kwargs, their checks (no sshd)."""

from __future__ import annotations

import getpass
import pickle
from typing import TYPE_CHECKING, Any

import paramiko
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from actorcluster.errors import ConfigurationError
from actorcluster.ssh import CONFIG_ENV_VAR, SshTarget, parse_ssh_kwargs, resolve_target

if TYPE_CHECKING:
    from pathlib import Path

PARAMIKO_KEYS = {
    "key_filename",
    "pkey",
    "password",
    "passphrase",
    "look_for_keys",
    "allow_agent",
    "banner_timeout",
    "auth_timeout",
    "channel_timeout",
    "timeout",
    "username",
    "compress",
    "gss_auth",
    "gss_kex",
    "gss_deleg_creds",
    "gss_trust_dns",
    "gss_host",
    "sock",
    "disabled_algorithms",
    "transport_factory",
    "auth_strategy",
}
"""paramiko connect()'s arguments: known at the top level (lazycluster) and in connect_kwargs."""

ACCEPTED_KEYS = {
    "user",
    "port",
    "connect_timeout",
    "connect_kwargs",
    "gateway",
    "forward_agent",
    "ssh_config_path",
    "known_hosts",
    "accept_new_host_keys",
} | PARAMIKO_KEYS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty home directory, and no ACTORCLUSTER_SSH_CONFIG."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    return path


def write_config(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_host_without_any_config_gets_the_defaults(home: Path) -> None:
    target = resolve_target("example.org")
    assert target == SshTarget(
        alias="example.org",
        hostname="example.org",
        user=getpass.getuser(),
        known_hosts_files=(str(home / ".ssh" / "known_hosts"), str(home / ".ssh" / "known_hosts2")),
        global_known_hosts_files=("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"),
    )
    assert (target.port, target.connect_timeout, target.server_alive_interval) == (22, 10.0, 5.0)
    assert (target.banner_timeout, target.auth_timeout, target.channel_timeout) == (10, 15, 10)
    assert target.allow_agent
    assert target.look_for_keys
    assert not target.accept_new_host_keys


def test_ssh_config_host_settings_are_applied(home: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "cfg",
        "Host web\n  HostName 10.1.2.3\n  User alice\n  Port 2222\n"
        "  IdentityFile ~/keys/%h-%r\n  IdentityFile /k/%u\n"
        "  UserKnownHostsFile ~/kh1 /etc/kh2\n  ConnectTimeout 3\n"
        "  ServerAliveInterval 7\n  StrictHostKeyChecking accept-new\n",
    )
    target = resolve_target("web", {"ssh_config_path": config})
    assert (target.alias, target.hostname, target.user, target.port) == (
        "web",
        "10.1.2.3",
        "alice",
        2222,
    )
    assert target.identity_files == (f"{home}/keys/10.1.2.3-alice", f"/k/{getpass.getuser()}")
    assert target.known_hosts_files == (f"{home}/kh1", "/etc/kh2")
    assert (target.connect_timeout, target.banner_timeout, target.server_alive_interval) == (
        3,
        3,
        7,
    )
    assert target.accept_new_host_keys
    assert target.address == "10.1.2.3:2222"


@pytest.mark.parametrize(
    ("value", "accept_new"),
    [("accept-new", True), ("no", True), ("yes", False), ("ask", False)],
)
def test_strict_host_key_checking_decides_whether_new_keys_are_trusted(
    home: Path, tmp_path: Path, value: str, accept_new: bool
) -> None:
    config = write_config(tmp_path / "cfg", f"Host *\n  StrictHostKeyChecking {value}\n")
    assert resolve_target("h", {"ssh_config_path": config}).accept_new_host_keys is accept_new


def test_identities_only_turns_off_the_agent_and_default_keys(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host h\n  IdentitiesOnly yes\n")
    target = resolve_target("h", {"ssh_config_path": config})
    assert not target.allow_agent
    assert not target.look_for_keys
    again = resolve_target(
        "h", {"ssh_config_path": config, "connect_kwargs": {"allow_agent": True}}
    )
    assert again.allow_agent
    assert not again.look_for_keys


def test_default_config_is_read_from_home_then_the_env_var_then_the_kwarg(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".ssh").mkdir()
    write_config(home / ".ssh" / "config", "Host h\n  User from-home\n")
    assert resolve_target("h").user == "from-home"
    monkeypatch.setenv(CONFIG_ENV_VAR, write_config(tmp_path / "env", "Host h\n  User from-env\n"))
    assert resolve_target("h").user == "from-env"
    kwarg = write_config(tmp_path / "kw", "Host h\n  User from-kwarg\n")
    assert resolve_target("h", {"ssh_config_path": kwarg}).user == "from-kwarg"


@pytest.mark.parametrize("source", ["kwarg", "env"])
def test_a_named_config_file_that_is_missing_raises(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    missing = str(tmp_path / "nope")
    if source == "env":
        monkeypatch.setenv(CONFIG_ENV_VAR, missing)
    kwargs = {"ssh_config_path": missing} if source == "kwarg" else None
    with pytest.raises(ConfigurationError, match="nope"):
        resolve_target("h", kwargs)


def test_ssh_kwargs_override_ssh_config(home: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "cfg",
        "Host h\n  User alice\n  Port 2222\n  IdentityFile /cfg/key\n  ConnectTimeout 3\n"
        "  StrictHostKeyChecking accept-new\n  UserKnownHostsFile /cfg/kh\n",
    )
    target = resolve_target(
        "h",
        {
            "ssh_config_path": config,
            "user": "bob",
            "port": 2200,
            "connect_timeout": 4.5,
            "known_hosts": [tmp_path / "kh"],
            "accept_new_host_keys": False,
            "connect_kwargs": {
                "key_filename": "/kw/key",
                "password": "hunter2",
                "banner_timeout": 1,
                "auth_timeout": 2,
                "channel_timeout": 3,
                "look_for_keys": False,
            },
        },
    )
    assert (target.user, target.port, target.connect_timeout) == ("bob", 2200, 4.5)
    assert target.identity_files == ("/kw/key", "/cfg/key")  # fabric's order: kwargs first
    assert target.known_hosts_files == (str(tmp_path / "kh"),)
    assert not target.accept_new_host_keys
    assert not target.look_for_keys
    assert (target.banner_timeout, target.auth_timeout, target.channel_timeout) == (1, 2, 3)
    assert target.password == "hunter2"


def test_none_values_mean_not_given(home: Path) -> None:
    kwargs: dict[str, Any] = {"user": None, "port": None, "connect_kwargs": {"password": None}}
    assert resolve_target("h", kwargs) == resolve_target("h")


def test_proxy_jump_first_hop_is_resolved_through_the_same_config(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "cfg",
        "Host target\n  HostName 10.0.0.5\n  ProxyJump carol@bastion:2022\n"
        "Host bastion\n  HostName 192.0.2.1\n  User nobody\n  IdentityFile /b/key\n",
    )
    target = resolve_target("target", {"ssh_config_path": config})
    jump = target.proxy_jump
    assert jump is not None
    assert (jump.alias, jump.hostname, jump.user, jump.port) == (
        "bastion",
        "192.0.2.1",
        "carol",
        2022,
    )
    assert jump.identity_files == ("/b/key",)
    assert jump.proxy_jump is None


def test_a_proxy_jump_list_goes_through_the_hops_in_order(home: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "cfg",
        "Host t\n  ProxyJump a,ssh://b:23\nHost a\n  ProxyJump z\nHost b\n  ProxyJump ignored\n",
    )
    target = resolve_target("t", {"ssh_config_path": config})
    chain = []
    hop = target.proxy_jump
    while hop is not None:
        chain.append((hop.alias, hop.port))
        hop = hop.proxy_jump
    assert chain == [("b", 23), ("a", 22), ("z", 22)]


def test_the_gateway_kwarg_replaces_the_configured_proxy_jump(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host t\n  ProxyJump a\n")
    target = resolve_target("t", {"ssh_config_path": config, "gateway": "dave@[::1]:2200"})
    assert target.proxy_jump is not None
    assert (target.proxy_jump.hostname, target.proxy_jump.user, target.proxy_jump.port) == (
        "::1",
        "dave",
        2200,
    )
    assert target.proxy_jump.address == "[::1]:2200"


def test_proxy_jump_loops_raise(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(ConfigurationError, match="ProxyJump loop: a -> b -> a"):
        resolve_target("a", {"ssh_config_path": config})


def test_a_catch_all_proxy_jump_does_not_make_the_jump_host_jump_through_itself(
    home: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg", "Host *\n  ProxyJump bastion\n")
    target = resolve_target("web", {"ssh_config_path": config})
    assert target.proxy_jump is not None
    assert target.proxy_jump.alias == "bastion"
    assert target.proxy_jump.proxy_jump is None


def test_proxy_jump_none_means_direct(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host t\n  ProxyJump none\n")
    assert resolve_target("t", {"ssh_config_path": config}).proxy_jump is None


@pytest.mark.parametrize(
    "text", ["Host h\n  Port http\n", "Host h\n  Port 0\n", "Host h\n  ConnectTimeout -1\n"]
)
def test_bad_numbers_in_ssh_config_raise_naming_the_host(
    home: Path, tmp_path: Path, text: str
) -> None:
    config = write_config(tmp_path / "cfg", text)
    with pytest.raises(ConfigurationError, match="'h'"):
        resolve_target("h", {"ssh_config_path": config})


def test_the_target_pickles_and_hides_secrets_from_repr(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host t\n  ProxyJump a\n")
    kwargs = {
        "ssh_config_path": config,
        "connect_kwargs": {"password": "hunter2", "passphrase": "sesame"},
    }
    target = resolve_target("t", kwargs)
    assert pickle.loads(pickle.dumps(target)) == target
    assert "hunter2" not in repr(target)
    assert "sesame" not in repr(target)


def test_a_pkey_is_kept_but_out_of_repr_and_equality(home: Path) -> None:
    pkey = paramiko.RSAKey.generate(1024)
    target = resolve_target("h", {"connect_kwargs": {"pkey": pkey}})
    assert target.pkey is pkey
    assert "RSAKey" not in repr(target)
    assert target == resolve_target("h")


def test_forward_agent_is_accepted_and_ignored_with_a_debug_log(home: Path) -> None:
    with capture_logs() as logs:
        target = resolve_target("h", {"forward_agent": True})
    assert target == resolve_target("h")
    assert {"event": "ssh.option.ignored", "key": "forward_agent", "value": True,
            "log_level": "debug"} in logs  # fmt: skip


def test_two_different_connect_timeouts_conflict() -> None:
    with pytest.raises(ConfigurationError, match=r"connect_kwargs\.timeout"):
        parse_ssh_kwargs({"connect_timeout": 1, "connect_kwargs": {"timeout": 2}})
    assert parse_ssh_kwargs({"connect_kwargs": {"timeout": 2}}).connect_timeout == 2


@pytest.mark.parametrize("host", ["", " ", "a b", None])
def test_an_invalid_host_name_raises(host: Any) -> None:
    with pytest.raises(ConfigurationError, match="invalid host"):
        resolve_target(host)


# --- bad ssh_kwargs, generated -------------------------------------------------------

not_a_number = st.one_of(st.text(), st.booleans(), st.lists(st.integers(), max_size=2))
bad_ports = st.one_of(st.integers(max_value=0), st.integers(min_value=65536), not_a_number)
bad_seconds = st.one_of(
    st.floats(max_value=0), st.just(float("nan")), st.just(float("inf")), not_a_number
)
not_a_flag = st.one_of(st.integers(), st.text(), st.just("yes"))
not_a_text = st.one_of(st.integers(), st.just(""), st.just("   "), st.binary(min_size=1))


@given(key=st.text().filter(lambda k: k not in ACCEPTED_KEYS), value=st.integers())
def test_unknown_keys_raise_naming_the_key(key: str, value: int) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_ssh_kwargs({key: value})
    assert "unknown key" in str(info.value)
    # The value is shown, unless the key names a secret (then it is redacted).
    assert repr(value) in str(info.value) or "<redacted>" in str(info.value)


@given(port=bad_ports)
def test_ports_outside_1_to_65535_or_not_ints_raise(port: Any) -> None:
    with pytest.raises(ConfigurationError, match="port="):
        parse_ssh_kwargs({"port": port})


@given(
    key=st.sampled_from(
        ["banner_timeout", "auth_timeout", "channel_timeout", "timeout", "connect_timeout"]
    ),
    seconds=bad_seconds,
)
def test_timeouts_must_be_positive_finite_numbers(key: str, seconds: Any) -> None:
    kwargs = {key: seconds} if key == "connect_timeout" else {"connect_kwargs": {key: seconds}}
    with pytest.raises(ConfigurationError, match=f"{key}="):
        parse_ssh_kwargs(kwargs)


@given(
    key=st.sampled_from(["accept_new_host_keys", "forward_agent"]),
    value=not_a_flag,
)
def test_flags_must_be_bools(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"{key}="):
        parse_ssh_kwargs({key: value})


@given(key=st.sampled_from(["user", "gateway"]), value=not_a_text)
def test_names_must_be_non_empty_strings(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"{key}="):
        parse_ssh_kwargs({key: value})


@given(
    key=st.sampled_from(["known_hosts", "ssh_config_path", "connect_kwargs.key_filename"]),
    value=st.one_of(st.integers(), st.just(""), st.just([]), st.lists(st.integers(), min_size=1)),
)
def test_paths_must_be_paths(key: str, value: Any) -> None:
    outer, _, inner = key.partition(".")
    kwargs = {outer: {inner: value}} if inner else {outer: value}
    with pytest.raises(ConfigurationError, match=f"{key}="):
        parse_ssh_kwargs(kwargs)


@given(key=st.text().filter(lambda k: k not in PARAMIKO_KEYS))
def test_unknown_connect_kwargs_raise_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown key"):
        parse_ssh_kwargs({"connect_kwargs": {key: 1}})


@pytest.mark.parametrize("key", ["password", "passphrase", "pkey"])
def test_secret_values_are_never_shown_in_errors(key: str) -> None:
    secret = 12345678987654321
    with pytest.raises(ConfigurationError) as info:
        parse_ssh_kwargs({"connect_kwargs": {key: secret}})
    assert str(secret) not in str(info.value)
    assert f"connect_kwargs.{key}=<redacted>" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        parse_ssh_kwargs({key: secret})  # lazycluster's way: at the top level
    assert str(secret) not in str(info.value)
    assert f"{key}=<redacted>" in str(info.value)


@pytest.mark.parametrize("value", [["not", "a", "dict"], "x", 3])
def test_ssh_kwargs_and_connect_kwargs_must_be_mappings(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="expected a dict"):
        parse_ssh_kwargs(value)
    with pytest.raises(ConfigurationError, match="connect_kwargs="):
        parse_ssh_kwargs({"connect_kwargs": value})


def test_fabric_user_at_host_port_shorthand_is_understood(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", "Host web\n  HostName 10.1.2.3\n  User alice\n")
    target = resolve_target("bob@web:2200", {"ssh_config_path": config})
    assert (target.alias, target.hostname, target.user, target.port) == (
        "web",
        "10.1.2.3",
        "bob",
        2200,
    )
    with pytest.raises(ConfigurationError, match="port given here and in ssh_kwargs"):
        resolve_target("web:2200", {"port": 2201})
