"""The README's demo: the ``localhost`` runtime (no sshd needed) doing a bit of everything.

Run it with ``python3 -m actorcluster.demo`` or ``actorcluster demo``: it connects, runs
commands and a function, sends a file and fetches it back, reaches a server on the
runtime through a tunnel, awaits tasks from asyncio, starts a small Dask cluster and
computes on it, and times ``run_command("true")``; each step prints its time. The same
calls work on any host of your ssh_config: replace ``"localhost"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import platform
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from actorcluster import Runtime, RuntimeTask
from actorcluster._limits import Deadline
from actorcluster.errors import ActorClusterError
from actorcluster.logconfig import configure_logging

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["main"]

_SERVER_WAIT = 10.0
"""Seconds the demo's web server may take to listen."""


def _where_am_i(greeting: str) -> str:
    return f"{greeting} from {platform.node()} (pid {os.getpid()}) in {os.getcwd()}"


def _total(numbers: list[int]) -> int:
    return sum(numbers)


def _square(number: int) -> int:
    return number * number


@contextlib.contextmanager
def _step(name: str) -> Iterator[list[str]]:
    """Time the block; print ``[  0.123 s] name: what the block said``."""
    said: list[str] = []
    started = time.perf_counter()
    yield said
    seconds = time.perf_counter() - started
    print(f"[{seconds:7.3f} s] {name}: {'; '.join(said)}", flush=True)


def _free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _commands_and_a_function(runtime: Runtime, said: list[str]) -> None:
    task = RuntimeTask("hello").run_command("echo hello from the shell; uname -s")
    task.run_function(_where_am_i, greeting="hello")
    runtime.execute_task(task, execute_async=False)
    said += [entry.strip().replace("\n", " / ") for entry in task.execution_log if entry.strip()]
    said.append(f"function returned {next(task.function_returns)!r}")


def _file_round_trip(runtime: Runtime, scratch: Path, said: list[str]) -> None:
    source = scratch / "numbers.txt"
    source.write_text("\n".join(map(str, range(1000))))
    runtime.send_file(str(source))
    runtime.get_file("numbers.txt", str(scratch / "back.txt"))
    same = (scratch / "back.txt").read_bytes() == source.read_bytes()
    said.append(f"sent {source.stat().st_size} bytes and fetched them back, identical: {same}")


def _tunnel(runtime: Runtime, said: list[str]) -> None:
    """A web server on the runtime, reached here through a tunnel to another port."""
    port = runtime.get_free_port(list(range(18000, 18100)))
    server = RuntimeTask("web-server").run_command(
        f"exec python3 -m http.server {port} --bind 127.0.0.1"
    )
    runtime.execute_task(server, execute_async=True)
    try:
        deadline = Deadline(_SERVER_WAIT)
        while runtime.has_free_port(port):  # until the server listens
            if deadline.expired():
                raise TimeoutError(f"the demo's web server did not listen on {port}")
            time.sleep(0.05)
        local_port = _free_local_port()
        key = runtime.expose_port_from_runtime(port, local_port)
        url = f"http://127.0.0.1:{local_port}/numbers.txt"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read()
        runtime.stop_process(key)
        said.append(f"GET {url} -> runtime port {port}: {len(body)} bytes")
    finally:
        server.stop("the demo is done with it")


async def _await_both(runtime: Runtime) -> list[object]:
    first = runtime.execute_task(RuntimeTask("async-a").run_function(_total, numbers=[1, 2, 3]))
    second = runtime.execute_task(RuntimeTask("async-b").run_command("echo awaited"))
    done = await asyncio.gather(first, second)
    return [next(done[0].function_returns), done[1].execution_log[0].strip()]


def _dask(said: list[str]) -> None:
    """Two Dask workers on a localhost group, squaring numbers (skipped without Dask)."""
    if importlib.util.find_spec("distributed") is None:
        said.append("skipped (pip install distributed to see it)")
        return
    from actorcluster import RuntimeGroup
    from actorcluster.cluster.dask_cluster import DaskCluster

    # The workers run this very interpreter (on another host: its python3.X).
    cluster = DaskCluster(RuntimeGroup(hosts=["localhost"]), python=sys.executable)
    try:  # the scheduler here, the workers on the group's runtime
        cluster.start(worker_count=2)
        with cluster.get_client(timeout=30) as client:
            total = client.submit(sum, client.map(_square, range(100))).result(timeout=60)
            workers = len(client.scheduler_info()["workers"])
    finally:
        cluster.cleanup()  # workers, scheduler and the group's runtime
    said.append(f"{workers} workers computed sum(n*n for n < 100) = {total}")


def _time_true(runtime: Runtime, said: list[str], rounds: int = 50) -> None:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        runtime.execute_task(RuntimeTask().run_command("true"), execute_async=False)
        timings.append(time.perf_counter() - started)
    timings.sort()
    said.append(f"median {timings[len(timings) // 2] * 1000:.2f} ms over {rounds}")


def main() -> None:
    """Run the demo and print what happened, each step with its time."""
    configure_logging("warning")
    with _step("connect") as said:
        runtime = Runtime("localhost")
        said.append(f"{runtime.host}, working dir {runtime.working_dir}")
    try:
        with _step("facts") as said:
            said.append(
                f"{runtime.cpu_cores} cores, {runtime.memory_in_mb} MB, "
                f"python {runtime.python_version}, {runtime.gpu_count} GPUs"
            )
        with _step("commands and a function") as said:
            _commands_and_a_function(runtime, said)
        with tempfile.TemporaryDirectory() as scratch:
            with _step("file round trip") as said:
                _file_round_trip(runtime, Path(scratch), said)
            with _step("tunnel") as said:
                _tunnel(runtime, said)
        with _step("asyncio") as said:
            said.append(f"awaited {asyncio.run(_await_both(runtime))}")
        with _step("dask cluster") as said:
            try:
                _dask(said)
            except ActorClusterError as exc:
                said.append(f"failed: {exc}")
        with _step("run_command('true')") as said:
            _time_true(runtime, said)
    finally:
        with _step("cleanup") as said:
            runtime.cleanup()
            said.append("runtime cleaned up, nothing left running")


if __name__ == "__main__":
    main()
