"""The connection keeper, for real: calls served by it over sshd hosts, a second local
user refused at its socket, Ctrl-C reaching the remote command, a keeper killed with
SIGKILL leaving nothing behind, a changed ssh_config not served by an old keeper, idle
exit, ``keeper status|stop`` and the ways to opt out."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess

import pytest

from actorcluster.cli.keeper_client import ask
from cli_runner import CLI, cli, cli_env, start_cli
from keepers import calls_served, keeper_pids, private_keepers
from proctree import cmdline, matching, wait_gone
from waiting import wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def keepers():
    """A private keeper folder for the test (every keeper in it stopped after)."""
    with private_keepers() as folder:
        yield folder


def _marker(tag: int) -> str:
    return f"sleep 7{os.getpid() % 1000:03d}{tag}"


def _sleeps(marker: str) -> list[int]:
    argv = marker.replace(" ", "\0").encode() + b"\0"
    return [pid for pid in matching(argv) if cmdline(pid) == argv]


def _sockets(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "k-*.sock")))


def test_calls_go_through_one_keeper_that_keeps_the_host_connected(ssh_bed, keepers):
    first = cli("run", "host-1", "--", "echo $$", ssh_config=ssh_bed.ssh_config)
    second = cli("run", "host-1", "--", "echo $$", ssh_config=ssh_bed.ssh_config)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert len(keeper_pids(keepers)) == 1 and calls_served(keepers) == 2
    status = cli("keeper", "status", "--json")
    records = json.loads(status.stdout)
    assert [record["hosts"] for record in records] == [["host-1"]]
    assert records[0]["ssh_config"] == str(ssh_bed.ssh_config)
    sessions = ssh_bed.hosts[0].sshd_session_pids()
    cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config)
    assert ssh_bed.hosts[0].sshd_session_pids() == sessions  # no new connection


def test_calls_at_once_each_get_their_own_output_and_exit_code(ssh_bed, keepers):
    assert cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config).returncode == 0
    script = "for i in $(seq 1 40); do echo {tag}$i; echo {tag}e$i >&2; sleep 0.01; done"
    script += "; exit {code}"
    processes = {
        tag: start_cli(
            "run", "host-1", "--", script.format(tag=tag, code=code), ssh_config=ssh_bed.ssh_config
        )
        for tag, code in (("A", 3), ("B", 4), ("C", 5))
    }
    for tag, process in processes.items():
        out, err = process.communicate(timeout=60)
        expected = {"A": 3, "B": 4, "C": 5}[tag]
        assert process.returncode == expected, err
        assert out.decode().split() == [f"{tag}{i}" for i in range(1, 41)]
        assert err.decode().split() == [f"{tag}e{i}" for i in range(1, 41)]
    assert len(keeper_pids(keepers)) == 1 and calls_served(keepers) == 4


def test_calls_one_after_another_on_several_hosts_each_print_every_host(ssh_bed, keepers):
    # The output of each host's command is delivered on a pool thread that lingers and
    # then serves the next call's hosts: it must write to that call's streams.
    for n in range(4):
        result = cli("run", "--all", "--", f"echo {n}", ssh_config=ssh_bed.ssh_config)
        assert result.returncode == 0, result.stderr
        lines = sorted(result.stdout.decode().splitlines())
        assert lines == [f"[host-{h}] {n}" for h in (1, 2, 3)], result.stderr
    assert len(keeper_pids(keepers)) == 1 and calls_served(keepers) == 4


def test_first_calls_at_once_share_one_new_keeper(ssh_bed, keepers):
    processes = [
        start_cli("run", "host-1", "--", f"echo {n}", ssh_config=ssh_bed.ssh_config)
        for n in range(3)
    ]
    for n, process in enumerate(processes):
        out, err = process.communicate(timeout=90)
        assert (process.returncode, out) == (0, f"{n}\n".encode()), err
    assert len(keeper_pids(keepers)) == 1 and calls_served(keepers) == 3


def test_a_call_ends_without_reading_stdin_it_did_not_need(ssh_bed, keepers):
    read_end, write_end = os.pipe()  # stdin that stays open, as a terminal does
    try:
        result = cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config, stdin=read_end)
        assert result.returncode == 0, result.stderr
        os.write(write_end, b"typed later\n")
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"typed later\n"  # nobody read it
    finally:
        os.close(read_end)
        os.close(write_end)
    assert calls_served(keepers) == 1


def test_localhost_calls_run_by_themselves(keepers):
    def run_local(mark: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*CLI, "run", "localhost", "--", "echo $ACK_MARK"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=cli_env(ACK_MARK=mark),
            timeout=90,
            check=False,
        )

    for mark in ("mine", "other"):  # the agent has the caller's environment, not a keeper's
        result = run_local(mark)
        assert (result.returncode, result.stdout) == (0, f"{mark}\n".encode()), result.stderr


def test_no_keeper_and_the_environment_switch_keep_calls_away(ssh_bed, keepers):
    direct = cli("--no-keeper", "run", "host-1", "--", "echo hi", ssh_config=ssh_bed.ssh_config)
    assert (direct.returncode, direct.stdout) == (0, b"hi\n")
    assert _sockets(keepers) == []
    env_off = subprocess.run(
        [*CLI, "run", "host-1", "--", "echo hi"],
        capture_output=True,
        env={**cli_env(ssh_bed.ssh_config), "ACTORCLUSTER_KEEPER": "0"},
        timeout=90,
        check=False,
    )
    assert (env_off.returncode, env_off.stdout) == (0, b"hi\n")
    assert _sockets(keepers) == []


def test_a_folder_others_may_enter_is_not_used(ssh_bed, keepers):
    os.chmod(keepers, 0o755)
    try:
        result = cli("run", "host-1", "--", "echo hi", ssh_config=ssh_bed.ssh_config)
    finally:
        os.chmod(keepers, 0o700)
    assert (result.returncode, result.stdout) == (0, b"hi\n")
    assert _sockets(keepers) == []


@pytest.fixture
def other_user():
    """A second local user, made for the test and removed after it."""
    if os.getuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("making a second local user needs root and useradd")
    name = f"acktest{os.getpid() % 100000}"
    made = subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/bin/false", name],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if made.returncode != 0:
        pytest.skip(f"useradd failed: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False, timeout=30)


_PROBE = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(sys.argv[1])
except OSError as error:
    print("refused:", type(error).__name__)
    raise SystemExit(0)
sock.settimeout(10)
try:
    sock.sendall(json.dumps({"op": "status"}).encode() + b"\\n")
    answer = sock.recv(65536)
except OSError as error:
    answer = b""
    print("closed:", type(error).__name__)
    raise SystemExit(0)
print("answered:" if answer else "closed:", answer.decode())
"""


def probe_as(user, probe: str, socket_path: str) -> str:
    """What ``probe`` (a script of :data:`_PROBE`'s kind) prints when ``user`` runs it
    against the keeper's socket."""
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", probe, socket_path],
        capture_output=True,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_a_second_local_user_cannot_use_the_keeper(ssh_bed, keepers, other_user):
    assert cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config).returncode == 0
    (socket_path,) = _sockets(keepers)

    def probe() -> str:
        return probe_as(other_user, _PROBE, socket_path)

    assert probe().startswith("refused: PermissionError")  # the folder is 0700
    os.chmod(keepers, 0o755)
    os.chmod(socket_path, 0o777)
    try:
        said = probe()  # past the file permissions, the keeper checks who it is
    finally:
        os.chmod(socket_path, 0o600)
        os.chmod(keepers, 0o700)
    assert said.startswith("closed:"), said
    assert calls_served(keepers) == 1


def test_ctrl_c_through_the_keeper_ends_the_remote_command(make_ssh_bed, keepers):
    bed = make_ssh_bed(1)
    marker = _marker(1)
    assert cli("run", "host-1", "--", "true", ssh_config=bed.ssh_config).returncode == 0
    process = start_cli("run", "host-1", "--", f"{marker}; echo never", ssh_config=bed.ssh_config)
    wait_until(lambda: len(_sleeps(marker)) == 1, 30, "the command started on the host")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert b"never" not in out and b"interrupted" in err and b"Traceback" not in err
    assert wait_gone(_sleeps(marker), 10) == []
    again = cli("run", "host-1", "--", "echo again", ssh_config=bed.ssh_config)
    assert (again.returncode, again.stdout) == (0, b"again\n")
    assert calls_served(keepers) == 3


def test_keeper_stop_interrupts_calls_in_flight_and_cleans_up(make_ssh_bed, keepers):
    bed = make_ssh_bed(1)
    marker = _marker(3)
    process = start_cli("run", "host-1", "--", f"{marker}; echo never", ssh_config=bed.ssh_config)
    wait_until(lambda: len(_sleeps(marker)) == 1, 60, "the command started on the host")
    pids = keeper_pids(keepers)
    assert b"stopped 1 keeper" in cli("keeper", "stop").stderr
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and b"never" not in out, err
    assert wait_gone(pids, 30) == []
    assert wait_gone(_sleeps(marker), 10) == []
    host = bed.hosts[0]
    wait_until(lambda: host.session_pids() == [], 20, "no session left on the host")


def test_a_keeper_killed_leaves_nothing_on_the_host_and_a_new_one_starts(make_ssh_bed, keepers):
    bed = make_ssh_bed(1)
    marker = _marker(2)
    process = start_cli("run", "host-1", "--", marker, ssh_config=bed.ssh_config)
    wait_until(lambda: len(_sleeps(marker)) == 1, 60, "the command started on the host")
    (old,) = keeper_pids(keepers)
    os.kill(old, signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1 and b"keeper went away" in err
    # The host's agent waits its session grace (15 s) for a reconnect, then cleans up.
    assert wait_gone(_sleeps(marker), 40) == []
    host = bed.hosts[0]
    wait_until(lambda: host.session_pids() == [], 20, "no session left on the host")
    again = cli("run", "host-1", "--", "echo again", ssh_config=bed.ssh_config)
    assert (again.returncode, again.stdout) == (0, b"again\n"), again.stderr
    (new,) = keeper_pids(keepers)
    assert new != old


def test_a_changed_ssh_config_is_not_served_by_the_old_keeper(ssh_bed, keepers, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(ssh_bed.ssh_config.read_text())
    assert cli("run", "host-1", "--", "true", ssh_config=config).returncode == 0
    (old,) = keeper_pids(keepers)
    config.write_text(config.read_text() + "\nHost host-9\n  HostName 127.0.0.2\n")
    changed = cli("run", "host-1", "--", "true", ssh_config=config)
    assert changed.returncode == 0, changed.stderr
    assert wait_gone([old], 15) == []  # it saw its ssh_config change, and left
    (new,) = keeper_pids(keepers)
    assert new != old
    other = cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config)
    assert other.returncode == 0
    assert len(keeper_pids(keepers)) == 2  # another ssh_config: a keeper of its own


def test_a_changed_known_hosts_is_not_served_by_the_old_keeper(ssh_bed, keepers, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_bytes(ssh_bed.known_hosts.read_bytes())
    config = tmp_path / "ssh_config"
    config.write_text(ssh_bed.ssh_config.read_text().replace(str(ssh_bed.known_hosts), str(known)))
    assert cli("run", "host-1", "--", "true", ssh_config=config).returncode == 0
    (old,) = keeper_pids(keepers)
    known.write_text("")  # every host key forgotten: nothing may be served from before
    refused = cli("run", "host-1", "--", "true", ssh_config=config)
    assert refused.returncode == 77, refused.stderr
    assert wait_gone([old], 15) == []


def test_an_idle_keeper_exits_and_stop_ends_one(ssh_bed):
    with private_keepers(idle=1) as folder:
        assert cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config).returncode == 0
        pids = keeper_pids(folder)
        assert wait_gone(pids, 20) == []
    with private_keepers() as folder:
        assert cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config).returncode == 0
        pids = keeper_pids(folder)
        stopped = cli("keeper", "stop")
        assert b"stopped 1 keeper" in stopped.stderr
        assert wait_gone(pids, 20) == []
        with contextlib.suppress(FileNotFoundError):
            assert _sockets(folder) == []


def test_a_call_made_as_the_keeper_stops_is_served_all_the_same(ssh_bed, keepers):
    assert cli("run", "host-1", "--", "true", ssh_config=ssh_bed.ssh_config).returncode == 0
    pids = keeper_pids(keepers)
    for path in _sockets(keepers):  # answered at once: the keeper stops after
        assert ask(path, {"op": "stop"}) is not None
    # Accepted by the stopping keeper, waiting in its backlog, or finding its lock still
    # held: each runs here or in a new keeper, never interrupted, never kept waiting.
    done = cli("run", "host-1", "--", "echo served", ssh_config=ssh_bed.ssh_config, timeout=25)
    assert (done.returncode, done.stdout) == (0, b"served\n"), done.stderr
    assert wait_gone(pids, 30) == []
