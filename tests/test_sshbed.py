"""The test bed itself: real sshd hosts that log in, go down, come back and clean up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest

from proctree import cmdline, matching, wait_gone
from sshbed import SshBed
from sshbed_home import pyenv_shims
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshHost

SSHBED_PY = Path(__file__).with_name("sshbed.py")


def ssh(bed: SshBed, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on ``host`` with the OpenSSH client and the bed's ssh_config."""
    return subprocess.run(
        ["ssh", "-F", str(bed.ssh_config), host, command],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def open_session(
    bed: SshBed, host: SshHost, command: str = "exec sleep 60"
) -> subprocess.Popen[str]:
    """An ssh session running ``command`` on ``host``, returned once it has started."""
    proc = subprocess.Popen(
        ["ssh", "-F", str(bed.ssh_config), host.name, f"echo started; {command}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    return proc


def ended(session: subprocess.Popen[str]) -> int:
    """Wait for an ssh session's client to exit; return its exit status."""
    status = session.wait(timeout=10)
    assert session.stdout is not None
    session.stdout.close()
    return status


def own_address(bed: SshBed, index: int) -> str:
    """Host ``index``'s own address: ``127.0.0.(N+1)`` on loopback, ``10.B.N.2`` in a
    network namespace of its own (isolated beds)."""
    block = bed.net_block.block if bed.net_block is not None else None
    return f"10.{block}.{index}.2" if bed.isolated else f"127.0.0.{index + 1}"


def refuses(host: SshHost) -> bool:
    """Whether the host's port refuses TCP connections."""
    try:
        socket.create_connection((host.address, host.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_every_host_accepts_a_key_login_with_the_openssh_client(ssh_bed: SshBed) -> None:
    clients = [
        subprocess.Popen(
            ["ssh", "-F", str(ssh_bed.ssh_config), host.name, "echo ok $(whoami)"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in ssh_bed.hosts
    ]
    # stdout only: root's rc files here may complain on stderr (pyenv's rehash lock)
    outputs = [client.communicate(timeout=20)[0] for client in clients]
    assert outputs == [f"ok {ssh_bed.user}\n"] * 3
    assert [h.address for h in ssh_bed.hosts] == [own_address(ssh_bed, n) for n in (1, 2, 3)]


def test_paramiko_logs_in_with_the_bed_ssh_config_key_and_known_hosts(ssh_bed: SshBed) -> None:
    config = paramiko.SSHConfig.from_path(str(ssh_bed.ssh_config)).lookup("host-2")
    client = paramiko.SSHClient()
    client.load_host_keys(config["userknownhostsfile"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        config["hostname"],
        port=int(config["port"]),
        username=config["user"],
        key_filename=config["identityfile"],
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, stdout, _ = client.exec_command("echo ok", timeout=10)
        assert stdout.read() == b"ok\n"
    finally:
        client.close()


def test_a_stopped_host_refuses_and_its_sessions_are_gone(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    session = open_session(bed, host)
    sessions = host.session_pids()
    assert len(sessions) >= 2  # sshd's session process(es) and `sleep 60`
    host.stop()
    assert ended(session) == 255
    assert wait_gone(sessions, timeout=1) == []
    assert not host.alive
    assert host.pid is None
    assert refuses(host)
    host.stop()  # idempotent


def test_a_restarted_host_accepts_again_on_the_same_port(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    port, first_pid = host.port, host.pid
    host.stop()
    host.start()
    assert (host.port, host.alive) == (port, True)
    assert host.pid != first_pid
    assert ssh(bed, "host-1", "echo back").stdout == "back\n"


def test_kill_sessions_drops_connections_but_keeps_the_listener(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    session = open_session(bed, host)
    killed = host.kill_sessions()
    assert ended(session) == 255
    assert wait_gone(killed, timeout=1) == []
    assert host.session_pids() == []
    assert ssh(bed, "host-1", "echo still").stdout == "still\n"


def test_killing_a_session_in_pyenv_rehash_removes_the_lock_it_held(
    make_ssh_bed: Callable[[int], SshBed], tmp_path: Path
) -> None:
    # All hosts share this machine's home: a killed `pyenv rehash` (root's .bashrc runs
    # one per login) would leave its lock and stall every later login.
    bed = make_ssh_bed(1)
    lock = tmp_path / "pyenv/shims/.pyenv-shim"
    lock.parent.mkdir(parents=True)
    rehash = f"export PYENV_ROOT={tmp_path}/pyenv; touch {lock}; exec -a pyenv-rehash sleep 60"
    session = open_session(bed, bed.hosts[0], rehash)
    wait_until(  # exec'd: not the shell whose command line holds the words
        lambda: any(cmdline(pid).startswith(b"pyenv-rehash") for pid in matching(b"pyenv-rehash")),
        10,
        "the rehash runs (holding its lock)",
    )
    bed.hosts[0].kill_sessions()
    assert ended(session) == 255
    assert not lock.exists()


def test_each_host_rehashes_pyenv_shims_of_its_own(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    # Separate machines do not wait on one another's pyenv rehash lock (sshbed_home.py).
    shims = pyenv_shims()
    if shims is None or os.getuid() != 0:
        pytest.skip("needs pyenv's shims folder and root (to mount a host's own over it)")
    bed = make_ssh_bed(2)
    probe = shims / f".probe-{os.getpid()}"  # a dot: pyenv rehash clears the rest
    try:
        assert ssh(bed, "host-1", f"touch {probe}").returncode == 0
        assert ssh(bed, "host-1", f"test -e {probe}").returncode == 0
        assert ssh(bed, "host-2", f"test -e {probe}").returncode == 1
        assert not probe.exists()
    finally:
        probe.unlink(missing_ok=True)


def test_no_sshd_of_the_bed_remains_after_the_bed_stops(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(2)
    sessions = [open_session(bed, host) for host in bed.hosts]
    pids = [pid for h in bed.hosts for pid in [h.pid, *h.session_pids()] if pid is not None]
    clients = {session.pid for session in sessions}
    bed_processes = matching(str(bed.root).encode())  # zombies have no command line
    assert len(set(bed_processes) - clients) == 3  # the two listeners, the watchdog
    bed.stop()
    assert [ended(s) for s in sessions] == [255, 255]
    assert wait_gone(pids, timeout=1) == []
    assert matching(str(bed.root).encode()) == []
    bed.stop()  # idempotent


def test_a_replaced_host_key_fails_host_key_verification(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    host = bed.hosts[0]
    trusted = bed.known_hosts.read_text()
    host.replace_host_key()
    assert bed.known_hosts.read_text() == trusted
    refused = ssh(bed, "host-1", "true")
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    host.replace_host_key(trust=True)
    assert ssh(bed, "host-1", "echo trusted").stdout == "trusted\n"


def test_add_host_grows_the_bed_by_one_reachable_host(
    make_ssh_bed: Callable[[int], SshBed],
) -> None:
    bed = make_ssh_bed(1)
    added = bed.add_host()
    assert (added.name, added.address) == ("host-2", own_address(bed, 2))
    assert [h.name for h in bed.hosts] == ["host-1", "host-2"]
    where = added.address if added.port == 22 else f"[{added.address}]:{added.port}"
    assert f"\n{where} ssh-ed25519 " in "\n" + bed.known_hosts.read_text()
    assert ssh(bed, "host-2", "echo two").stdout == "two\n"


def test_the_watchdog_kills_the_sshd_of_a_process_killed_with_sigkill(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, str(SSHBED_PY), str(tmp_path / "bed"), "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as owner:
        assert owner.stdout is not None
        assert "Ctrl-C stops" in owner.stdout.readline()  # the bed is up
        pids = [int((tmp_path / f"bed/host-{i}/sshd.pid").read_text()) for i in (1, 2)]
        owner.send_signal(signal.SIGKILL)
    assert wait_gone(pids, timeout=5) == []
    assert "killed orphaned sshd" in (tmp_path / "bed/watchdog.log").read_text()


def test_a_bed_directory_with_a_space_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must not contain spaces"):
        SshBed(tmp_path / "a b")
