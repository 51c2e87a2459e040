"""run_shell over SSH: raw bytes live on two streams, stdin fed through (once and in
order, across a dropped connection too), the exit code, and cancel reaching the host."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from actorcluster import Runtime
from actorcluster.errors import TaskCancelledError, UsageError
from actorcluster.runtimes.shell import run_shell
from proctree import matching, wait_gone
from waiting import wait_until

FAST = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0, "session_grace": 15.0}


class Collected:
    """What a command wrote, by stream, and on which threads it was handed over."""

    def __init__(self) -> None:
        self.streams: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.threads: set[str] = set()

    def __call__(self, fd: int, data: bytes) -> None:
        self.streams[fd] += data
        self.threads.add(threading.current_thread().name)


@pytest.fixture
def runtime(ssh_bed):
    with Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        yield rt


def test_output_arrives_as_raw_bytes_on_two_streams_with_the_exit_code(runtime):
    out = Collected()
    command = run_shell(runtime, "printf 'a\\0\\377b'; printf 'oops\\n' >&2; exit 7", on_output=out)
    assert command.wait(30) == 7
    assert bytes(out.streams[1]) == b"a\x00\xffb"
    assert bytes(out.streams[2]) == b"oops\n"
    assert out.threads == {"shell-host-1"}  # never the session's reader


def test_stdin_is_fed_through_byte_exact_in_order(runtime):
    data = os.urandom(3 * 1024 * 1024)  # three times the input window
    out = Collected()
    command = run_shell(runtime, "sha256sum", on_output=out, stdin=io.BytesIO(data))
    assert command.wait(60) == 0
    assert out.streams[1].split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_without_stdin_a_command_reads_an_empty_input(runtime):
    out = Collected()
    assert run_shell(runtime, "cat; echo end", on_output=out).wait(30) == 0
    assert bytes(out.streams[1]) == b"end\n"


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(runtime):
    assert run_shell(runtime, "kill -TERM $$").wait(30) == 143


def test_cancel_kills_the_command_on_the_host(runtime):
    marker = f"sleep 7{os.getpid() % 1000}1"
    command = run_shell(runtime, f"{marker}; echo never")
    wait_until(lambda: matching(marker.encode()), 20, "the command started")
    command.cancel()
    with pytest.raises(TaskCancelledError):
        command.wait(30)
    assert command.future.cancelled()
    assert wait_gone(matching(marker.encode()), 10) == []


def test_a_failing_output_consumer_stops_the_command_and_fails_its_future(runtime):
    def refuse(fd: int, data: bytes) -> None:
        raise BrokenPipeError("the reader went away")

    command = run_shell(runtime, "yes", on_output=refuse)
    with pytest.raises(BrokenPipeError):
        command.wait(30)


def test_a_command_that_is_not_text_is_refused(runtime):
    with pytest.raises(UsageError, match="command must be a string"):
        run_shell(runtime, ["ls"])  # type: ignore[arg-type]


@pytest.mark.slow
def test_stdin_reaches_the_command_once_across_a_dropped_connection(make_ssh_bed, tmp_path):
    bed = make_ssh_bed(1)
    sshd = bed.hosts[0]
    landed = tmp_path / "landed"
    first, second = os.urandom(200_000), os.urandom(300_000)
    read_end, write_end = os.pipe()
    with (
        os.fdopen(read_end, "rb", buffering=0) as source,
        Runtime("host-1", connection_kwargs={**bed.connection_kwargs, **FAST}) as rt,
    ):
        command = run_shell(rt, f"cat > {landed}", stdin=source)
        os.write(write_end, first)
        wait_until(lambda: landed.exists() and landed.stat().st_size == len(first), 20)
        assert sshd.kill_sshd_sessions()
        wait_until(lambda: rt._handle.context.reattaches >= 1, 30, "the session re-attached")
        view = memoryview(second)
        while view:
            view = view[os.write(write_end, view) :]
        os.close(write_end)
        assert command.wait(60) == 0
    assert landed.read_bytes() == first + second
