"""The whole supervision tree as plain data, read without asking any actor (a busy
actor never holds a snapshot up): each actor's own ``statistics()`` snapshot, read
from this thread, plus each runtime's state and each supervised process's record.

Shape (every value JSON-ready)::

    {"at": 1765100000.0,
     "tree": {"id", "kind", "name", "state", "host", "restart_count",
              "intensity_left", "since", "detail", "children": [...]},
     "runtimes": [{"host", "state", "since", "reason", "tasks_running", "tunnels"}],
                 (not those gone: stopped runtimes are no part of the tree)
     "tasks": [{"host", "task", "step", "steps", "since"}],
     "processes": [{"host", "name", "status", "restarts", "exit_codes", "pid", "error"}],
     "tunnels": [{"host", "tunnel", "up", "failed_opens", "since"}]}
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any

import pykka

from actorcluster.observe.hooks import processes, runtimes
from actorcluster.supervisors import Supervisor, root_supervisor

__all__ = ["take_snapshot"]

_MAX_DEPTH = 32


def take_snapshot(root: pykka.ActorRef[Any] | None = None) -> dict[str, Any]:
    """The tree under ``root`` (None: the library's default tree) as plain data."""
    ref = root if root is not None else root_supervisor()
    tasks: list[dict[str, Any]] = []
    tunnels: list[dict[str, Any]] = []
    tree = _node(ref, ref_id(ref), None, tasks, tunnels, 0)
    return {
        "at": time.time(),
        "tree": tree,
        "runtimes": [
            _runtime(context, record) for context, record in runtimes() if record.state != "gone"
        ],
        "tasks": tasks,
        "processes": [_process(state) for state in processes()],
        "tunnels": tunnels,
    }


def ref_id(ref: pykka.ActorRef[Any]) -> str:
    """A ref's child id (its actor's), or its class name."""
    actor = ref._actor_weakref()  # noqa: SLF001 - read-only, never blocks on the actor
    return str(getattr(actor, "child_id", ref.actor_class.__name__))


def _node(
    ref: pykka.ActorRef[Any] | None,
    child_id: str,
    info: Any,
    tasks: list[dict[str, Any]],
    tunnels: list[dict[str, Any]],
    depth: int,
) -> dict[str, Any]:
    actor = ref._actor_weakref() if ref is not None else None  # noqa: SLF001 - see ref_id
    alive = ref is not None and ref.is_alive()
    state = "running" if alive else ("restarting" if getattr(info, "restarting", False) else "stopped")
    node: dict[str, Any] = {
        "id": child_id,
        "kind": type(actor).__name__ if actor is not None else "",
        "name": child_id,
        "state": state,
        "host": _host(actor),
        "restart_count": getattr(info, "restart_count", 0),
        "intensity_left": None,
        "since": getattr(actor, "created_at", None),
        "detail": {},
        "children": [],
    }
    if actor is None or not alive:
        return node
    if isinstance(actor, Supervisor):
        _supervisor(actor, node, tasks, tunnels, depth)
        return node
    detail = _statistics(actor)
    node["detail"] = detail
    kind = node["kind"]
    if kind == "TaskActor":
        tasks.append({"host": node["host"], "task": detail.get("task"), "step": detail.get("step"),
                      "steps": detail.get("steps"), "since": node["since"]})  # fmt: skip
    elif kind == "TunnelActor":
        tunnels.append({"host": node["host"], "tunnel": detail.get("key"), "up": detail.get("up"),
                        "failed_opens": detail.get("failed_opens"), "since": node["since"]})  # fmt: skip
    return node


def _supervisor(
    actor: Supervisor,
    node: dict[str, Any],
    tasks: list[dict[str, Any]],
    tunnels: list[dict[str, Any]],
    depth: int,
) -> None:
    try:
        stats = actor.statistics()
    except RuntimeError:  # its table changed while read: show it without children
        return
    window = getattr(actor, "_window", None)
    most = getattr(window, "max_restarts", None)
    node["name"] = stats.name
    node["detail"] = {"strategy": stats.strategy.name.lower(), "restarts_total": stats.restarts_total,
                      "pending_restarts": stats.pending_restarts}  # fmt: skip
    if most is not None:
        node["intensity_left"] = max(0, most - stats.restarts_in_period)
    if depth >= _MAX_DEPTH:
        return
    node["children"] = [
        _node(child.ref, child.id, child, tasks, tunnels, depth + 1) for child in stats.children
    ]


def _host(actor: Any) -> str:
    context = getattr(actor, "_context", None)
    host = getattr(context, "host", None)
    return host if isinstance(host, str) else ""


def _statistics(actor: Any) -> dict[str, Any]:
    statistics = getattr(actor, "statistics", None)
    if not callable(statistics):
        return {}
    try:
        value = statistics()
    except Exception:  # noqa: BLE001 - a snapshot shows what it can
        return {}
    return plain(value) if dataclasses.is_dataclass(value) else {}


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses, enums, tuples; others as ``str``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _runtime(context: Any, record: Any) -> dict[str, Any]:
    return {
        "host": context.host,
        "state": record.state,
        "since": record.since,
        "reason": record.reason,
        "tasks_running": context.running_task_count,
        "tunnels": [spec.key for spec in context.tunnels()],
    }


def _process(state: Any) -> dict[str, Any]:
    error = state.error
    return {
        "host": state.host,
        "name": state.name,
        "status": plain(state.status),
        "restarts": state.restart_count,
        "exit_codes": list(state.exit_codes),
        "pid": state.pid,
        "error": "" if error is None else str(error),
    }
