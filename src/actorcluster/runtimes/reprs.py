"""Notebook summaries of a runtime and a task (their ``_repr_html_``).

Rendering never waits long and never raises: a runtime's facts are read once (within
:data:`FACTS_WAIT`) and shown from the cache after; a host that does not answer in time
shows without them.
"""

from __future__ import annotations

import pickle
import reprlib
from typing import TYPE_CHECKING, Any

from actorcluster._html import summary_table
from actorcluster.errors import ActorClusterError, TaskCancelledError
from actorcluster.runtimes import processes as process_keys

if TYPE_CHECKING:
    from actorcluster.runtimes.runtime import Runtime
    from actorcluster.runtimes.task import RuntimeTask

__all__ = [
    "FACTS_WAIT",
    "returns_text",
    "running_count",
    "runtime_html",
    "summary_facts",
    "task_html",
    "task_state",
]

FACTS_WAIT = 2.0
"""Seconds a summary waits for a runtime's facts the first time."""
_LOG_SHOWN = 1000
"""Characters of a task's latest log entry shown."""
_RETURNS_SHOWN = 120
"""Characters of a task's function returns shown in its ``repr``."""
_SHORT = reprlib.Repr()
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlevel = 3


class _Unreadable:
    """A return value that cannot be unpickled here (its class's module is missing)."""

    def __repr__(self) -> str:
        return "<unreadable>"


def _loaded(value: bytes) -> object:
    try:
        return pickle.loads(value)
    except Exception:  # a repr never raises
        return _Unreadable()


def returns_text(returns: list[bytes]) -> str:
    """A task's function returns (still pickled), shortened for its ``repr``."""
    text = _SHORT.repr([_loaded(value) for value in returns])
    return text if len(text) <= _RETURNS_SHOWN else text[: _RETURNS_SHOWN - 4] + "...]"


def summary_facts(runtime: Runtime) -> dict[str, Any]:
    """The host's facts for a summary (a runtime's, a group's row): read within
    :data:`FACTS_WAIT` the first time, from the cache after; empty while it is not
    connected.

    Raises:
        ActorClusterError: the host did not answer in time.
    """
    if not runtime.is_connected:
        return {}
    return runtime._host_info.facts(FACTS_WAIT)


def running_count(runtime: Runtime) -> int:
    """How many of the tasks run through this runtime's facade are running now."""
    return sum(1 for task in runtime._tasks.tasks() if task.is_running)


def _facts_rows(runtime: Runtime) -> list[tuple[str, object]]:
    if not runtime.is_connected:
        return []
    try:
        facts = summary_facts(runtime)
    except ActorClusterError:
        return [("facts", "not available now")]
    memory = facts.get("memory")
    return [
        ("os", f"{facts.get('os', '-')} ({facts.get('architecture', '-')})"),
        ("cpu cores", facts.get("cpu_cores")),
        ("memory", f"{int(memory) / 2**30:.1f} GiB" if isinstance(memory, int) else None),
        ("gpus", ", ".join(facts.get("gpus") or []) or "none"),
        ("python", facts.get("python_version")),
    ]


def runtime_html(runtime: Runtime) -> str:
    """A runtime's host, state, working dir, tasks, tunnels and facts, as HTML."""
    state = runtime._state()
    tasks = runtime._tasks.tasks()
    running = sum(1 for task in tasks if task.is_running)
    tunnels = [
        key
        for key, handle in runtime._processes.all(only_alive=True).items()
        if process_keys.is_port_exposure_key(key) and handle.is_alive()
    ]
    rows: list[tuple[str, object]] = [
        ("host", runtime.host),
        ("working dir", runtime.working_dir),
        ("tasks", f"{len(tasks)} run here, {running} running"),
        ("tunnels", ", ".join(tunnels) or "none"),
    ]
    if state == "ready":
        rows += _facts_rows(runtime)
    return summary_table("Runtime", runtime.host, state, rows)


def task_state(task: RuntimeTask) -> str:
    """``not run``, ``running``, ``done``, ``cancelled`` or ``failed: ErrorType``."""
    future = task.future
    if future is None:
        return "not run"
    if not future.done():
        return "running"
    error = future.exception(0)
    if error is None:
        return "done"
    if isinstance(error, TaskCancelledError):
        return "cancelled"
    return f"failed: {type(error).__name__}"


def task_html(task: RuntimeTask) -> str:
    """A task's name, host, state, steps and latest output, as HTML."""
    steps = [step.describe() for step in task._steps]
    log = list(task.execution_log)
    rows: list[tuple[str, object]] = [
        ("host", task._host or None),
        ("steps", "\n".join(f"{index}: {step}" for index, step in enumerate(steps)) or "none"),
        ("steps run", f"{len(log)} of {len(steps)}" if task.future is not None else None),
    ]
    if log:
        rows.append((f"log of step {len(log) - 1}", log[-1][-_LOG_SHOWN:]))
    future = task.future
    if future is not None and future.done() and (error := future.exception(0)) is not None:
        rows.append(("error", str(error)))
    return summary_table("RuntimeTask", task.name, task_state(task), rows)
