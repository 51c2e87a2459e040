"""asyncio: connect, run and wait without blocking the event loop.

python examples/asyncio_tasks.py [HOST]      (default: localhost)
"""

from __future__ import annotations

import asyncio
import sys

from actorcluster import Runtime, RuntimeTask, TaskCancelledError

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"


def square(n: int) -> int:
    return n * n


async def main() -> None:
    async with await Runtime.connect(host) as runtime:
        # Futures are awaitable: gather many tasks at once.
        futures = [runtime.execute_task(RuntimeTask().run_function(square, n=n)) for n in range(8)]
        done = await asyncio.gather(*futures)
        print("squares:", [next(task.function_returns) for task in done])

        # A timeout cancels the task on the host (its process group is killed).
        slow = runtime.execute_task(RuntimeTask("slow").run_command("sleep 60"))
        try:
            await asyncio.wait_for(slow, timeout=0.5)
        except asyncio.TimeoutError:
            print("timed out")
        try:
            await slow  # it ends as cancelled, moments later
        except TaskCancelledError as error:
            print("the task was cancelled:", slow.cancelled(), f"({error})")


asyncio.run(main())
