"""The command line in a real terminal (a pseudo-terminal on its stdin, stdout and
stderr): it ends cleanly with the command's code, Ctrl-C exits 130 and leaves nothing
running, transfers draw progress bars, ``hosts`` draws its table."""

from __future__ import annotations

import os

import pytest

from proctree import cmdline, matching, wait_gone
from terminal import Terminal

pytestmark = pytest.mark.timeout(180)


def _sleep_marker() -> str:
    """A sleep only this test starts (found on the hosts by its command line)."""
    return f"sleep 7{os.getpid() % 1000:03d}1"


def test_run_in_a_terminal_exits_with_the_commands_code_and_output(ssh_bed):
    terminal = Terminal("run", "host-1", "--", "hostname; exit 0", ssh_config=ssh_bed.ssh_config)
    try:
        assert terminal.wait() == 0, bytes(terminal.seen)
    finally:
        terminal.close()
    assert os.uname().nodename.encode() in terminal.seen
    assert b"Fatal Python error" not in terminal.seen
    assert b"Traceback" not in terminal.seen


def test_run_forwards_what_is_typed_in_the_terminal(ssh_bed):
    terminal = Terminal(
        "run", "host-1", "--", "read line; echo got-$line", ssh_config=ssh_bed.ssh_config
    )
    try:
        terminal.type(b"typed\n")
        terminal.expect(b"got-typed")
        assert terminal.wait() == 0, bytes(terminal.seen)
    finally:
        terminal.close()


def test_ctrl_c_in_a_terminal_exits_130_and_kills_the_remote_command(ssh_bed):
    marker = _sleep_marker()
    argv = marker.replace(" ", "\0").encode() + b"\0"
    terminal = Terminal(
        "run", "host-1", "--", f"echo started; {marker}", ssh_config=ssh_bed.ssh_config
    )
    try:
        terminal.expect(b"started")
        terminal.type(b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground group
        assert terminal.wait() == 130, bytes(terminal.seen)
    finally:
        terminal.close()
    assert b"interrupted" in terminal.seen
    assert b"Traceback" not in terminal.seen and b"Fatal Python error" not in terminal.seen
    assert wait_gone([p for p in matching(argv) if cmdline(p) == argv], 10) == []


def test_put_and_get_in_a_terminal_draw_progress_bars(ssh_bed, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(2_000_000))
    put = Terminal("put", str(source), f"host-1:{tmp_path}/copy.bin", ssh_config=ssh_bed.ssh_config)
    try:
        assert put.wait() == 0, bytes(put.seen)
    finally:
        put.close()
    assert b"2.0/2.0 MB" in put.seen, bytes(put.seen)
    back = tmp_path / "back"
    back.mkdir()
    get = Terminal("get", f"host-1:{tmp_path}/copy.bin", str(back), ssh_config=ssh_bed.ssh_config)
    try:
        assert get.wait() == 0, bytes(get.seen)
    finally:
        get.close()
    assert (back / "copy.bin").read_bytes() == source.read_bytes()
    assert b"2.0/2.0 MB" in get.seen, bytes(get.seen)


def test_hosts_in_a_terminal_draws_its_table(ssh_bed):
    terminal = Terminal("hosts", "host-1", "host-2", ssh_config=ssh_bed.ssh_config)
    try:
        assert terminal.wait() == 0, bytes(terminal.seen)
    finally:
        terminal.close()
    assert b"host-1" in terminal.seen and b"host-2" in terminal.seen
    assert b"2 of 2 host(s) reachable" in terminal.seen
