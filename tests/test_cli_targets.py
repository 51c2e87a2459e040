"""The command line's hosts: patterns in every command, hosts that cannot be used (down,
silent, taking only git over SSH) as rows of ``hosts``, ``--connect-timeout``, ``run
--json``, and a missing ``--``."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from cli_runner import cli

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def silent_port():
    """A port that takes TCP connections and never says a word (no SSH banner)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def fleet_config(make_ssh_bed, tmp_path, silent_port):
    """An ssh_config: a bed host that works, one that takes only git (every command
    fails, as on github.com), a silent one, and ``Host github.com`` at an address
    where nothing answers."""
    bed = make_ssh_bed(2)
    bed.hosts[1].configure('ForceCommand echo "Hi! You have no shell access."; exit 1\n')
    config = tmp_path / "ssh_config"
    config.write_text(
        bed.ssh_config.read_text().replace("Host host-2", "Host git-only")
        + f"\nHost silent\n    HostName 127.0.0.1\n    Port {silent_port}\n    BatchMode yes\n"
        + "\nHost github.com\n    HostName 192.0.2.1\n    User git\n    BatchMode yes\n"
    )
    return config


def test_hosts_lists_unusable_hosts_as_unreachable_and_exits_0(fleet_config):
    started = time.monotonic()
    result = cli("--connect-timeout", "2", "hosts", "--json", ssh_config=fleet_config)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    records = {record["host"]: record for record in json.loads(result.stdout)}
    assert list(records) == ["host-1", "git-only", "silent", "github.com"]
    assert records["host-1"]["reachable"] is True
    for host in ("git-only", "silent", "github.com"):
        assert records[host]["reachable"] is False
        assert records[host]["status"] == "unreachable"
    assert "no shell access" in records["git-only"]["error"]
    # Before: the silent host's start went on for its own 10 s banner wait (the timeout
    # is 2 s, so 10 s leaves a loaded machine 8 s of slack and still tells the two apart).
    assert elapsed < 10, elapsed


def test_hosts_table_shows_pythons_and_whether_functions_run(fleet_config):
    result = cli("--connect-timeout", "4", "hosts", ssh_config=fleet_config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split()[:8] == [
        "host",
        "status",
        "cpus",
        "memory",
        "gpus",
        "python",
        "functions",
        "os",
    ]
    up = next(line for line in lines if line.startswith("host-1"))
    assert " yes " in up
    assert sum("unreachable" in line for line in lines) == 3


def test_run_json_prints_one_object_per_host(ssh_bed):
    result = cli(
        "run",
        "--json",
        "host-[12],no-such-host.invalid",
        "--",
        "echo out-$((6*7)); echo err >&2; exit 3",
        ssh_config=ssh_bed.ssh_config,
    )
    assert result.returncode == 68, result.stderr  # the worst: the unknown host
    records = {r["host"]: r for r in map(json.loads, result.stdout.decode().splitlines())}
    assert set(records) == {"host-1", "host-2", "no-such-host.invalid"}
    for host in ("host-1", "host-2"):
        record = records[host]
        assert (record["exit_code"], record["stdout"], record["stderr"]) == (3, "out-42\n", "err\n")
        assert record["seconds"] >= 0
    assert records["no-such-host.invalid"]["exit_code"] == 68
    assert "does not resolve" in records["no-such-host.invalid"]["error"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "host-1", "ls", "-la"], b"actorcluster run host-1 -- ls -la"),
        (["run", "--all", "df", "-h"], b"actorcluster run --all -- df -h"),
    ],
)
def test_a_command_with_options_needs_dashes(ssh_bed, args, says):
    result = cli(*args, ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 64
    assert b"put -- between the hosts and a command with options" in result.stderr
    assert says in result.stderr


def test_put_get_and_info_take_patterns(ssh_bed, tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("payload")
    remote = tmp_path / "remote"  # the hosts are this machine: both land here
    remote.mkdir()
    sent = cli("put", str(source), f"host-[12]:{remote}/", ssh_config=ssh_bed.ssh_config)
    assert sent.returncode == 0, sent.stderr
    assert b"to host-1:" in sent.stderr and b"to host-2:" in sent.stderr
    assert (remote / "data.txt").read_text() == "payload"

    back = tmp_path / "back"
    back.mkdir()
    got = cli("get", f"host-*:{remote}/data.txt", str(back), ssh_config=ssh_bed.ssh_config)
    assert got.returncode == 0, got.stderr
    for host in ("host-1", "host-2", "host-3"):
        assert (back / host / "data.txt").read_text() == "payload"

    one = cli("info", "host-2", "--json", ssh_config=ssh_bed.ssh_config)
    assert json.loads(one.stdout)["cpu_cores"] >= 1
    many = cli("info", "host-[13]", "--json", ssh_config=ssh_bed.ssh_config)
    assert many.returncode == 0, many.stderr
    assert [record["host"] for record in json.loads(many.stdout)] == ["host-1", "host-3"]


def test_a_pattern_that_matches_nothing_is_a_usage_error(ssh_bed, tmp_path):
    result = cli("put", os.devnull, "gpu-*:x", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 64
    assert b"no host matches 'gpu-*'" in result.stderr
