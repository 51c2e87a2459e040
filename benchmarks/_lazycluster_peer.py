"""lazycluster 0.2.4's side of bench_engine.py; runs in lazycluster's own virtualenv.

``python _lazycluster_peer.py HOST CONNECTS CALLS FUNCTIONS`` times ``Runtime(HOST)``
(``CONNECTS`` times), ``execute_task`` of ``run_command("true")`` and ``echo`` (``CALLS``
times each) and ``execute_function`` (``FUNCTIONS`` times), all synchronous, and prints
one JSON line ``{"name": [seconds, ...], ...}`` last. lazycluster resolves ``HOST`` from
``~/.ssh/config`` only: the caller writes that file for the run. Its ``run_function``
runs ``python3`` on the host with the client's cloudpickle, so the runtime's ``PATH``
starts with this virtualenv's ``bin``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any


def _timed(call: Any, count: int) -> list[float]:
    call()  # warm-up: the first call also creates lazycluster's working directory
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main(host: str, connects: int, calls: int, functions: int) -> dict[str, list[float]]:
    """Measure; return the samples by name."""
    from lazycluster import Runtime, RuntimeTask  # type: ignore[attr-defined,unused-ignore]

    logging.disable(logging.CRITICAL)
    results: dict[str, list[float]] = {"connect": []}
    for _ in range(connects):
        started = time.perf_counter()
        Runtime(host)
        results["connect"].append(time.perf_counter() - started)
    runtime = Runtime(host)
    venv_bin = os.path.dirname(sys.executable)
    runtime.add_env_variables({"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"})

    def command() -> None:
        runtime.execute_task(RuntimeTask("bench").run_command("true"), execute_async=False)

    def function() -> None:
        task = runtime.execute_function(_one, execute_async=False)
        if list(task.function_returns) != [1]:
            raise RuntimeError(f"lazycluster returned {list(task.function_returns)!r}")

    results["run_command"] = _timed(command, calls)
    results["echo"] = _timed(lambda: runtime.echo("hi"), calls)
    results["execute_function"] = _timed(function, functions)
    runtime.cleanup()
    return results


def _one() -> int:
    return 1


if __name__ == "__main__":
    host_name, *counts = sys.argv[1:]
    found = main(host_name, *(int(count) for count in counts))
    print(json.dumps(found), flush=True)
