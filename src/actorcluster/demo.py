"""The README's demo: the ``localhost`` runtime (no sshd needed) doing a bit of everything.

Run it with ``python3 -m actorcluster.demo``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

from actorcluster import Runtime, RuntimeTask
from actorcluster.logconfig import configure_logging

__all__ = ["main"]


def _where_am_i(greeting: str) -> str:
    return f"{greeting} from {platform.node()} (pid {os.getpid()}) in {os.getcwd()}"


def _total(numbers: list[int]) -> int:
    return sum(numbers)


async def _await_both(runtime: Runtime) -> list[object]:
    first = runtime.execute_task(RuntimeTask("async-a").run_function(_total, numbers=[1, 2, 3]))
    second = runtime.execute_task(RuntimeTask("async-b").run_command("echo awaited"))
    assert first is not None and second is not None
    done = await asyncio.gather(first, second)
    return [next(done[0].function_returns), done[1].execution_log[0].strip()]


def main() -> None:
    """Run the demo and print what happened."""
    configure_logging("warning")
    started = time.perf_counter()
    with Runtime("localhost") as runtime:
        print(f"connected to {runtime.host} in {time.perf_counter() - started:.3f} s")
        print(f"working dir: {runtime.working_dir}")
        print(
            f"cores={runtime.cpu_cores} memory={runtime.memory_in_mb} MB "
            f"python={runtime.python_version} gpus={runtime.gpu_count}"
        )

        task = RuntimeTask("hello").run_command("echo hello from the shell; uname -s")
        task.run_function(_where_am_i, greeting="hello")
        runtime.execute_task(task, execute_async=False)
        for index, entry in enumerate(task.execution_log):
            print(f"step {index}: {entry.strip()}")
        print(f"function returned: {next(task.function_returns)!r}")

        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch, "numbers.txt")
            source.write_text("\n".join(map(str, range(1000))))
            runtime.send_file(str(source))
            runtime.get_file("numbers.txt", str(Path(scratch, "back.txt")))
            same = Path(scratch, "back.txt").read_text() == source.read_text()
            print(f"file round trip identical: {same}")

        print(f"awaited from asyncio: {asyncio.run(_await_both(runtime))}")

        timings = []
        for _ in range(50):
            t0 = time.perf_counter()
            runtime.execute_task(RuntimeTask().run_command("true"), execute_async=False)
            timings.append(time.perf_counter() - t0)
        timings.sort()
        print(f"run_command('true'): median {timings[len(timings) // 2] * 1000:.2f} ms over 50")
    print("done: runtime cleaned up, nothing left running")


if __name__ == "__main__":
    main()
