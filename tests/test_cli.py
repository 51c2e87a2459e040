"""The command line, driven for real through subprocesses against sshd hosts: every
command, its exit codes, stderr kept apart from stdout, stdin forwarded, Ctrl-C
leaving nothing on any host, and a closed pipe ending it quietly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from cli_runner import cli, start_cli
from keepers import calls_served, private_keepers
from proctree import cmdline, matching, wait_gone
from sshbed import write_ed25519_key
from waiting import wait_until

pytestmark = pytest.mark.timeout(180)


_DIRECT_ONLY = ("help", "version", "No such command", "debug", "demo", "verbose")
"""Tests of calls a keeper never serves (help, version, an unknown command, the demo) or
sends back to run by themselves (logging, --debug)."""


@pytest.fixture(autouse=True, params=["direct", "keeper"])
def cli_path(request: pytest.FixtureRequest):
    """Every test runs twice: calls made here, and calls served by a keeper (a private
    one, stopped after the test); output and exit codes must be the same."""
    if request.param == "direct":
        yield request.param
        return
    if any(word in request.node.name for word in _DIRECT_ONLY):
        pytest.skip("this call never goes through a keeper")
    with private_keepers() as folder:
        yield request.param
        assert calls_served(folder) > 0, "no call went through a keeper"


def _marker(tag: int) -> str:
    """A sleep only this test starts (found on the hosts by its command line)."""
    return f"sleep 8{os.getpid() % 1000:03d}{tag}"


def _sleeps(marker: str) -> list[int]:
    """The ``sleep`` processes ``marker`` started (argv ``sleep``, ``8...``)."""
    argv = marker.replace(" ", "\0").encode() + b"\0"
    return [pid for pid in matching(argv) if cmdline(pid) == argv]


def _no_traceback(result: subprocess.CompletedProcess[bytes] | bytes) -> None:
    err = result if isinstance(result, bytes) else result.stderr
    assert b"Traceback" not in err, err.decode(errors="replace")


# --- help and usage ---------------------------------------------------------------


def test_help_documents_the_commands_and_exit_codes_without_markup():
    result = cli("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for word in ("hosts", "run", "put", "get", "dask", "demo", "ACTORCLUSTER_SSH_CONFIG"):
        assert word in text
    for code in ("64", "68", "77", "130", "141"):
        assert re.search(rf"^ +{code} +\w", text, re.MULTILINE), f"exit code {code} not explained"
    assert "``" not in text and ":class:" not in text and ":meth:" not in text


def test_version_is_printed():
    result = cli("--version")
    assert (result.returncode, result.stdout.decode().split()[0]) == (0, "actorcluster")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bogus"], b"No such command"),
        (["run", "localhost"], b"no command given"),
        (["run", "--", "true"], b"no host given"),
        (["run", "--no-such-option", "x", "--", "true"], b"no-such-option"),
        (["put", "/no/such/file", "localhost:/tmp/"], b"no such local file"),
        (["put", "file", "not-remote"], b"not HOST:PATH"),
        (["get", "localhost:a", "other:b", "."], b"one host"),
    ],
)
def test_usage_errors_exit_64_with_one_message(args, says):
    result = cli(*args)
    assert result.returncode == 64, result.stderr
    assert says in result.stderr
    _no_traceback(result)


# --- run ---------------------------------------------------------------------------


def test_run_keeps_stderr_apart_and_returns_the_exit_code(ssh_bed):
    result = cli(
        "run", "host-1", "--", "echo out; echo err >&2; exit 3", ssh_config=ssh_bed.ssh_config
    )
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"  # nothing else: no log line, no summary for one host


def test_run_without_dashes_takes_the_first_word_as_the_host(ssh_bed):
    result = cli("run", "host-2", "echo", "$((6*7))", ssh_config=ssh_bed.ssh_config)
    assert (result.returncode, result.stdout) == (0, b"42\n")


def test_run_forwards_stdin_byte_exact_for_one_host(ssh_bed):
    data = os.urandom(500_000) + b"\x00\xff"
    result = cli("run", "host-1", "--", "cat", input=data, ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_run_with_no_stdin_reads_nothing(ssh_bed):
    result = cli(
        "run", "-n", "host-1", "--", "cat; echo end", input=b"unread", ssh_config=ssh_bed.ssh_config
    )
    assert (result.returncode, result.stdout) == (0, b"end\n")


def test_run_runs_in_the_login_home(ssh_bed):
    result = cli("run", "host-1", "--", "pwd", ssh_config=ssh_bed.ssh_config)
    assert result.stdout.decode().strip() == os.path.expanduser("~")


def test_run_on_several_hosts_prefixes_lines_and_returns_the_highest_code(ssh_bed):
    host_2 = ssh_bed.hosts[1].sshd_address  # its sshd's address: in $SSH_CONNECTION there
    result = cli(
        "run",
        "host-1,host-2",
        "host-3",
        "--",
        f'printf "one\\ntwo"; echo problem >&2; case $SSH_CONNECTION in *{host_2}*) exit 5;; esac',
        ssh_config=ssh_bed.ssh_config,
    )
    assert result.returncode == 5
    out = result.stdout.decode().splitlines()
    for host in ("host-1", "host-2", "host-3"):
        assert [line for line in out if line.startswith(f"[{host}] ")] == [
            f"[{host}] one",
            f"[{host}] two",
        ]
    err = result.stderr.decode().splitlines()
    assert sorted(line for line in err if line.endswith("problem")) == [
        "[host-1] problem",
        "[host-2] problem",
        "[host-3] problem",
    ]
    assert "actorcluster: host-2: exited with 5" in err  # host-2 is 127.0.0.3


def test_run_takes_patterns_and_all_hosts_of_the_ssh_config(ssh_bed):
    by_pattern = cli("run", "host-[12]", "--", "echo hi", ssh_config=ssh_bed.ssh_config)
    assert sorted(by_pattern.stdout.decode().splitlines()) == ["[host-1] hi", "[host-2] hi"]
    every = cli("run", "--all", "--", "echo hi", ssh_config=ssh_bed.ssh_config)
    assert len(every.stdout.decode().splitlines()) == 3
    nothing = cli("run", "gpu-*", "--", "true", ssh_config=ssh_bed.ssh_config)
    assert nothing.returncode == 64
    assert b"no host matches 'gpu-*'" in nothing.stderr and b"host-1" in nothing.stderr


def test_an_unknown_host_exits_68_with_one_line_and_no_traceback(ssh_bed):
    result = cli("run", "no-such-host.invalid", "--", "true", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 68
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("actorcluster: error: ")
    assert "no-such-host.invalid" in lines[0]


def test_debug_shows_the_traceback(ssh_bed):
    result = cli(
        "--debug", "run", "no-such-host.invalid", "--", "true", ssh_config=ssh_bed.ssh_config
    )
    assert result.returncode == 68
    assert b"Traceback" in result.stderr


def test_one_unreachable_host_among_several_fails_only_its_part(ssh_bed):
    result = cli(
        "run", "host-1,no-such-host.invalid", "--", "echo up", ssh_config=ssh_bed.ssh_config
    )
    assert result.returncode == 68
    assert result.stdout == b"[host-1] up\n"
    assert b"no-such-host.invalid" in result.stderr
    _no_traceback(result)


def test_refused_authentication_exits_77(ssh_bed, tmp_path):
    stranger = tmp_path / "stranger_key"
    write_ed25519_key(stranger, "not-authorized")
    config = tmp_path / "ssh_config"
    text = ssh_bed.ssh_config.read_text()
    config.write_text(text.replace(str(ssh_bed.client_key), str(stranger)))
    result = cli("run", "host-1", "--", "true", ssh_config=config)
    assert result.returncode == 77, result.stderr
    _no_traceback(result)


def test_a_closed_pipe_ends_run_quietly(ssh_bed):
    process = start_cli("run", "host-1", "--", "seq 1 10000000", ssh_config=ssh_bed.ssh_config)
    assert process.stdout is not None
    assert process.stdout.readline() == b"1\n"
    process.stdout.close()  # `| head -1`
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert err == b""


def test_a_closed_pipe_ends_hosts_quietly(ssh_bed):
    process = start_cli("hosts", "--json", ssh_config=ssh_bed.ssh_config, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before anything is printed
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert err == b""


@pytest.mark.parametrize("hosts", ["host-1", "host-1,host-2"])
def test_ctrl_c_on_run_stops_the_command_everywhere_and_leaves_nothing(make_ssh_bed, hosts):
    bed = make_ssh_bed(2)
    marker = _marker(len(hosts))
    count = hosts.count(",") + 1
    process = start_cli(
        "run", hosts, "--", f"echo started; {marker}; echo never", ssh_config=bed.ssh_config
    )
    wait_until(lambda: len(_sleeps(marker)) == count, 30, "the commands started on the hosts")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert b"never" not in out
    assert b"interrupted" in err
    _no_traceback(err)
    assert wait_gone(matching(marker.encode()), 10) == []
    for host in bed.hosts:
        wait_until(
            lambda host=host: host.session_pids() == [], 15, f"{host.name} has no session left"
        )


# --- hosts and info ----------------------------------------------------------------


def test_hosts_lists_every_host_with_its_facts_as_json(ssh_bed):
    result = cli("hosts", "--json", "host-*", "no-such-host.invalid", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 0  # one host is unreachable: a row, not a failure
    records = json.loads(result.stdout)
    assert [record["host"] for record in records] == [
        "host-1",
        "host-2",
        "host-3",
        "no-such-host.invalid",
    ]
    for record in records[:3]:
        assert record["reachable"] is True
        assert record["cpu_cores"] >= 1 and record["memory"] > 0 and record["python_version"]
        assert record["functions"] is True
    missing = records[3]
    assert missing["reachable"] is False
    assert missing["error_type"] == "UnknownHostError" and "does not resolve" in missing["error"]


def test_hosts_prints_plain_columns_in_a_pipe(ssh_bed):
    result = cli("hosts", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["host", "status", "cpus"]
    assert [line.split()[:2] for line in lines[1:]] == [[f"host-{n}", "up"] for n in (1, 2, 3)]
    assert "\x1b[" not in result.stdout.decode()


def test_info_prints_a_hosts_facts(ssh_bed):
    result = cli("info", "host-1", "--json", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["host"] == "host-1"


# --- put and get -------------------------------------------------------------------


def test_put_and_get_move_files_and_folders(ssh_bed, tmp_path):
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_text("alpha")
    (local / "sub" / "b.bin").write_bytes(os.urandom(100_000))
    remote = tmp_path / "remote"  # the hosts are this machine: an absolute path is checkable
    sent = cli("put", str(local), f"host-1:{remote}", ssh_config=ssh_bed.ssh_config)
    assert sent.returncode == 0, sent.stderr
    assert (remote / "sub" / "b.bin").read_bytes() == (local / "sub" / "b.bin").read_bytes()
    assert b"sent" in sent.stderr and b"2 files" in sent.stderr
    assert b"\r" not in sent.stderr and b"\x1b[" not in sent.stderr  # no progress bar in a pipe
    back = tmp_path / "back"
    back.mkdir()
    got = cli(
        "get",
        f"host-1:{remote}/a.txt",
        f"host-1:{remote}/sub",
        str(back),
        ssh_config=ssh_bed.ssh_config,
    )
    assert got.returncode == 0, got.stderr
    assert (back / "a.txt").read_text() == "alpha"
    assert (back / "sub" / "b.bin").read_bytes() == (local / "sub" / "b.bin").read_bytes()


def test_get_of_a_missing_file_exits_1_naming_it(ssh_bed, tmp_path):
    result = cli("get", f"host-1:{tmp_path}/missing", str(tmp_path), ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 1
    assert b"missing" in result.stderr
    _no_traceback(result)


def test_put_shows_progress_bars_on_a_terminal(ssh_bed, tmp_path):
    import pty

    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2_000_000))
    leader, follower = pty.openpty()
    try:
        process = start_cli(
            "put",
            str(source),
            f"host-1:{tmp_path}/copy.bin",
            ssh_config=ssh_bed.ssh_config,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        seen = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed: the command ended
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(60) == 0
    finally:
        os.close(leader)
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert b"2.0/2.0 MB" in seen, seen  # rich's bar: bytes done of the total


# --- demo --------------------------------------------------------------------------


def test_demo_runs_each_step_and_times_it():
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    steps = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines]
    assert steps == [
        "connect",
        "facts",
        "commands and a function",
        "file round trip",
        "tunnel",
        "asyncio",
        "dask cluster",
        "run_command('true')",
        "cleanup",
    ]
    assert all(re.match(r"\[ *\d+\.\d{3} s\] ", line) for line in lines)
    assert "identical: True" in result.stdout.decode()
    _no_traceback(result)


# --- logging -----------------------------------------------------------------------


def test_verbose_json_logs_go_to_stderr_as_json_lines(ssh_bed):
    result = cli(
        "-v",
        "--log-format",
        "json",
        "run",
        "host-1",
        "--",
        "echo hi",
        ssh_config=ssh_bed.ssh_config,
    )
    assert (result.returncode, result.stdout) == (0, b"hi\n")
    events = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert any(event["event"] == "runtime.started" for event in events)
