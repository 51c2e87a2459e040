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
     "tunnels": [{"host", "tunnel", "up", "failed_opens", "since", "connections", "bytes"}]}
                 (connections and bytes: None where the carrier does not count them)
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import TYPE_CHECKING, Any

from actorcluster.observe.hooks import processes, runtimes

if TYPE_CHECKING:
    import pykka

__all__ = ["take_snapshot"]

_MAX_DEPTH = 32


def take_snapshot(root: pykka.ActorRef[Any]) -> dict[str, Any]:
    """The tree under ``root`` (a root supervisor's ref) as plain data."""
    ref = root
    walk = _Walk()
    tree = walk.node(ref, ref_id(ref), None, 0)
    return {
        "at": time.time(),
        "tree": tree,
        "runtimes": [
            _runtime(context, record) for context, record in runtimes() if record.state != "gone"
        ],
        "tasks": walk.tasks,
        "processes": [_process(state) for state in processes()],
        "tunnels": walk.tunnels,
    }


def ref_id(ref: pykka.ActorRef[Any]) -> str:
    """A ref's child id (its actor's), or its class name."""
    actor = ref._actor_weakref()
    return str(getattr(actor, "child_id", ref.actor_class.__name__))


class _Walk:
    """One walk down the tree, collecting tasks and tunnels on the way."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.tunnels: list[dict[str, Any]] = []

    def node(
        self, ref: pykka.ActorRef[Any] | None, child_id: str, info: Any, depth: int
    ) -> dict[str, Any]:
        """One actor (and, for a supervisor, its subtree) as plain data."""
        actor = ref._actor_weakref() if ref is not None else None
        alive = ref is not None and ref.is_alive()
        restarting = getattr(info, "restarting", False)
        node: dict[str, Any] = {
            "id": child_id,
            "kind": type(actor).__name__ if actor is not None else "",
            "name": child_id,
            "state": "running" if alive else ("restarting" if restarting else "stopped"),
            "host": _host(actor),
            "restart_count": getattr(info, "restart_count", 0),
            "intensity_left": None,
            "since": getattr(actor, "created_at", None),
            "detail": {},
            "children": [],
        }
        if actor is None or not alive:
            return node
        if _is_supervisor(actor):
            self._supervisor(actor, node, depth)
            return node
        detail = node["detail"] = _statistics(actor)
        host, since = node["host"], node["since"]
        if node["kind"] == "TaskActor":
            self.tasks.append({
                "host": host, "task": detail.get("task"), "step": detail.get("step"),
                "steps": detail.get("steps"), "since": since,
            })  # fmt: skip
        elif node["kind"] == "TunnelActor":
            self.tunnels.append({
                "host": host, "tunnel": detail.get("key"), "up": detail.get("up"),
                "failed_opens": detail.get("failed_opens"), "since": since,
                "connections": detail.get("connections"), "bytes": detail.get("bytes"),
            })  # fmt: skip
        return node

    def _supervisor(self, actor: Any, node: dict[str, Any], depth: int) -> None:
        try:
            stats = actor.statistics()
        except RuntimeError:  # its table changed while read: show it without children
            return
        most = getattr(getattr(actor, "_window", None), "max_restarts", None)
        node["name"] = stats.name
        node["detail"] = {
            "strategy": stats.strategy.name.lower(),
            "restarts_total": stats.restarts_total,
            "pending_restarts": stats.pending_restarts,
        }
        if most is not None:
            node["intensity_left"] = max(0, most - stats.restarts_in_period)
        if depth < _MAX_DEPTH:
            node["children"] = [
                self.node(child.ref, child.id, child, depth + 1) for child in stats.children
            ]


def _is_supervisor(actor: Any) -> bool:
    """Whether ``actor`` is a supervisor (its statistics list its children); by shape,
    so this layer imports nothing of the supervisors above it."""
    return callable(getattr(actor, "which_children", None)) and hasattr(actor, "_window")


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
    except Exception:
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
