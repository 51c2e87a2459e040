"""RuntimeManager against a real ssh_config of five sshd hosts: one dead, one without a
usable python, one with a (fake) GPU, two of them in an included file; plus an
unresolvable name, a host whose key is refused and a pattern. Discovery keeps the live
ones and names the rest with reasons; every filter works both ways."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import stat

import pytest

from actorcluster import (
    AgentStartError,
    AuthenticationError,
    ConnectionRefusedHostError,
    NoRuntimesDetectedError,
    RuntimeManager,
    RuntimeTask,
    UnknownHostError,
    UsageError,
)
from actorcluster.runtime_mgmt import RuntimeGroup
from sshbed import SshBed, write_ed25519_key

pytestmark = pytest.mark.slow

H100_ROW = "0, NVIDIA H100 80GB HBM3, 81559, 535.104.05, GPU-5b3c8e2a-1f4d-6b7a-9c0e-2d4f6a8b0c1e"
ACTIVE = ["host-4", "host-1", "host-2"]


def _blocks(bed: SshBed) -> dict[str, str]:
    """The bed's ssh_config, one Host block per host."""
    text = bed.ssh_config.read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"Host (\S+)\n(?:[ \t]+.*\n?)*", text)}


def _executable(path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp("manager")
    with SshBed(root / "bed", count=5) as bed:
        fake = root / "fakebin"
        fake.mkdir()
        _executable(fake / "nvidia-smi", f"echo '{H100_ROW}'")
        _executable(fake / "special-tool", "true")
        run_with = 'ForceCommand env PATH={} /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
        bed.hosts[1].configure(run_with.format(f"{fake}:$PATH"))  # host-2: a GPU, a tool
        empty_home = root / "empty-home"
        empty_home.mkdir()
        # host-5: no python3 on PATH, and a home without pyenv's or uv's installs (the
        # start command looks there too for one of the client's version)
        bed.hosts[4].configure(run_with.format(f"/nonexistent HOME={empty_home}"))
        bed.hosts[2].stop()  # host-3: dead
        blocks = _blocks(bed)
        (root / "conf.d").mkdir()
        (root / "conf.d" / "lab.conf").write_text(blocks["host-4"] + blocks["host-5"])
        stranger = root / "stranger_key"
        write_ed25519_key(stranger, "not authorized")
        wrong_key = blocks["host-1"].replace("Host host-1", "Host wrongkey")
        wrong_key = wrong_key.replace(str(bed.client_key), str(stranger))
        path = root / "ssh_config"
        path.write_text(
            f"Include {root}/conf.d/*.conf\n"
            + blocks["host-1"]
            + blocks["host-2"]
            + blocks["host-3"]
            + "Host ghost\n    HostName ghost.invalid\n"
            + wrong_key
            + "Host web-* !web-0\n    User nobody\n"
        )
        yield path


@pytest.fixture(scope="module")
def manager(config):
    with RuntimeManager(str(config), timeout=60) as found:
        yield found


def test_discovery_keeps_the_live_hosts_and_names_the_rest_with_reasons(manager):
    assert manager.hosts == ACTIVE
    inactive = manager.inactive_hosts
    assert list(inactive) == ["host-5", "host-3", "ghost", "wrongkey"]
    assert isinstance(inactive["host-5"], AgentStartError)
    assert "python3" in str(inactive["host-5"])
    assert isinstance(inactive["host-3"], ConnectionRefusedHostError)
    assert isinstance(inactive["ghost"], UnknownHostError)
    assert isinstance(inactive["wrongkey"], AuthenticationError)
    assert all(host in str(error) for host, error in inactive.items())


def test_a_group_of_all_detected_runtimes_runs_a_broadcast(manager):
    group = manager.create_group()
    assert isinstance(group, RuntimeGroup) and group.hosts == ACTIVE
    tasks = group.execute_task(RuntimeTask("up").run_command("echo up"), broadcast=True)
    group.join()
    assert [t.execution_log for t in tasks] == [["up\n"]] * 3


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"include_hosts": ["host-2", "host-1"]}, ["host-1", "host-2"]),
        ({"exclude_hosts": "host-4"}, ["host-1", "host-2"]),
        ({"gpu_required": True}, ["host-2"]),
        ({"min_memory": 1}, ACTIVE),
        ({"min_cpu_cores": 1}, ACTIVE),
        ({"installed_executables": ["sh", "python3"]}, ACTIVE),
        ({"installed_executables": "special-tool"}, ["host-2"]),
        ({"filter_commands": "echo true"}, ACTIVE),  # "true\n": the newline is no obstacle
        ({"filter_commands": ["printf 'TRUE\\r\\n'", "echo true"]}, ACTIVE),
        (
            {  # host-1's sshd address: 127.0.0.2 on loopback, 10.B.1.2 isolated
                "filter_commands": 'case "$SSH_CONNECTION" in *" 127.0.0.2 "*|*" 10."*".1.2 "*) '
                "echo true;; esac"
            },
            ["host-1"],
        ),
        (
            {"gpu_required": True, "installed_executables": "special-tool", "min_cpu_cores": 1},
            ["host-2"],
        ),
    ],
)
def test_every_filter_keeps_the_hosts_that_pass(manager, filters, expected):
    assert manager.create_group(**filters).hosts == expected


@pytest.mark.parametrize(
    "filters",
    [
        {"gpu_required": True, "exclude_hosts": ["host-2"]},
        {"min_memory": 10**9},
        {"min_cpu_cores": 10**6},
        {"installed_executables": ["sh", "no-such-executable"]},
        {"filter_commands": "echo false"},
        {"filter_commands": ["echo true", "echo truey"]},
    ],
)
def test_a_filter_no_host_passes_raises_no_runtimes_detected(manager, filters):
    with pytest.raises(NoRuntimesDetectedError, match="passes the filters"):
        manager.create_group(**filters)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"include_hosts": ["host-3"]}, "host-3"),
        ({"include_hosts": "host-1", "exclude_hosts": "host-2"}, "not both"),
        ({"min_memory": "lots"}, "min_memory"),
        ({"gpu_required": "yes"}, "gpu_required"),
        ({"installed_executables": 3}, "installed_executables"),
    ],
)
def test_bad_filters_are_usage_errors(manager, filters, message):
    with pytest.raises(UsageError, match=message):
        manager.create_group(**filters)


def test_a_groups_working_dir_is_created_on_its_runtimes(manager, tmp_path):
    target = str(tmp_path / "work")
    group = manager.create_group(include_hosts=["host-1", "host-4"], working_dir=target)
    tasks = group.execute_task(RuntimeTask("pwd").run_command("pwd"), broadcast=True)
    group.join()
    assert [t.execution_log[0].strip() for t in tasks] == [target, target]


def test_print_methods_list_active_and_inactive_hosts(manager):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        manager.print_hosts()
        manager.print_inactive_hosts()
        manager.print_runtime_info()
    text = out.getvalue()
    assert "3 runtime(s) and 4 inactive host(s) detected" in text
    assert re.search(r"^ghost\s+host ghost is unreachable", text, re.MULTILINE)
    assert "NVIDIA H100 80GB HBM3" in text


def test_nothing_live_is_no_runtimes_detected_naming_why(tmp_path):
    path = tmp_path / "ssh_config"
    path.write_text("Host ghost\n    HostName ghost.invalid\nHost *\n    User x\n")
    with pytest.raises(NoRuntimesDetectedError, match="ghost"):
        RuntimeManager(str(path))
    path.write_text("Host *\n    User x\n")
    with pytest.raises(NoRuntimesDetectedError, match="no Host entries"):
        RuntimeManager(str(path))


def test_discovery_from_asyncio(config):
    async def main() -> list[str]:
        manager = await RuntimeManager.discover(str(config), timeout=60)
        try:
            group = await manager.create_group_async(gpu_required=True)
            return group.hosts
        finally:
            await asyncio.to_thread(manager.cleanup)

    assert asyncio.run(main()) == ["host-2"]


def test_without_any_ssh_config_nothing_is_detected(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ACTORCLUSTER_SSH_CONFIG", raising=False)
    with pytest.raises(NoRuntimesDetectedError, match="there is none"):
        RuntimeManager()
