"""Functions: run Python on the host, get the return value back (or its exception).

python examples/functions.py [HOST]      (default: localhost)
"""

from __future__ import annotations

import platform
import sys

from actorcluster import RemoteFunctionError, Runtime, RuntimeTask

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"


def describe(greeting: str) -> str:
    """Runs on the host: it sees the host's machine, files and environment."""
    return f"{greeting} from {platform.node()} on Python {platform.python_version()}"


def divide(a: float, b: float) -> float:
    return a / b


with Runtime(host) as runtime:
    # One call, synchronous: the value comes back (cloudpickle both ways).
    task = runtime.execute_function(describe, greeting="hello")
    print(next(task.function_returns))

    # Steps mix commands and functions; each function's value is kept in order.
    task = RuntimeTask("mixed").run_function(divide, a=1, b=4).run_command("echo between")
    task.run_function(lambda: sum(range(10)))
    runtime.execute_task(task, execute_async=False)
    print("returns:", list(task.function_returns), "log:", task.execution_log[1].strip())

    # Many at once: futures, awaited together.
    futures = [runtime.execute_task(RuntimeTask().run_function(divide, a=n, b=2)) for n in range(5)]
    print("halves:", [next(f.result(timeout=30).function_returns) for f in futures])

    # An exception on the host comes back typed, with the remote traceback.
    try:
        runtime.execute_function(divide, a=1, b=0)
    except RemoteFunctionError as error:
        print("raised on the host:", error.exc_type)
        print("the exception itself:", repr(error.exception))
