"""User callbacks (progress, live output, done callbacks) never run on an I/O thread: a
slow one delays only its own task, never the runtime's heartbeats or other tasks."""

from __future__ import annotations

import threading
import time

import pytest

from actorcluster import Runtime, RuntimeTask

FAST_HEARTBEAT = {"heartbeat_interval": 0.3, "heartbeat_timeout": 1.5}
IO_THREADS = ("actorcluster-agent-reader", "actorcluster-timers")


@pytest.fixture(params=["localhost", "host-1"])
def runtime(request, ssh_bed):
    kwargs = dict(FAST_HEARTBEAT)
    if request.param != "localhost":
        kwargs.update(ssh_bed.connection_kwargs)
    with Runtime(request.param, connection_kwargs=kwargs) as rt:
        yield rt


def test_a_callback_slower_than_the_heartbeat_timeout_does_not_drop_the_runtime(runtime, tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"x" * 3_000_000)
    threads: list[str] = []

    def slow_progress(done: int, total: int | None) -> None:
        threads.append(threading.current_thread().name)
        time.sleep(1.0)  # the callback itself is what is slow: nothing to wait for

    agent_pid = runtime.handle.client().hello["pid"]
    other = runtime.execute_task(RuntimeTask("other").run_command("sleep 1; echo other"))
    runtime.send_file(str(source), "copy.bin", progress=slow_progress)
    runtime.get_file("copy.bin", str(tmp_path / "back.bin"), progress=slow_progress)
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert other is not None
    other.get(timeout=10)
    assert runtime.is_connected
    assert runtime.handle.client().hello["pid"] == agent_pid  # the same agent: no reconnect
    assert threads and not any(name.startswith(IO_THREADS) for name in threads)


def test_done_callbacks_and_live_output_run_on_an_actor_thread(runtime, capsys):
    seen: list[str] = []
    done = threading.Event()
    future = runtime.execute_task(RuntimeTask("live").run_command("echo live"), debug=True)
    assert future is not None
    future.add_done_callback(lambda _: (seen.append(threading.current_thread().name), done.set()))
    future.get(timeout=10)
    assert done.wait(10)
    assert not any(name.startswith(IO_THREADS) for name in seen)
    assert "live" in capsys.readouterr().out
