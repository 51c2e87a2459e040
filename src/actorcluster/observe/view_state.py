"""What the web view remembers from the event stream (bounded): the recent events,
each task's steps and output tail, each supervised process's exits (its restarts and
their reasons)."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actorcluster.observe.events import Event

__all__ = ["ViewState"]

RECENT = 300
"""Events the recent list keeps."""
TASKS = 500
"""Tasks remembered (the oldest are forgotten first)."""
OUTPUT_CHARS = 20_000
"""Characters of a task's output kept."""
EXITS = 50
"""Exits kept per supervised process."""


class ViewState:
    """Fed by the bus (a listener, inline and quick); read by the view's handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self._tasks: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self._output: dict[int, collections.deque[str]] = {}
        self._exits: dict[tuple[str, str], collections.deque[dict[str, Any]]] = {}

    def on_event(self, event: Event) -> None:
        """Remember what the view shows of ``event``."""
        kind = event.kind
        with self._lock:
            if kind == "task.output":
                self._on_output(event)
                return
            data = event.to_dict()
            self.recent.append(data)
            if kind.startswith("task."):
                self._on_task(kind, data)
            elif kind == "process.exited":
                key = (event.host, data["process"])
                self._exits.setdefault(key, collections.deque(maxlen=EXITS)).append(data)

    def _on_output(self, event: Any) -> None:
        tail = self._output.get(event.task_id)
        if tail is None:
            return
        tail.append(event.text)
        while sum(len(piece) for piece in tail) > OUTPUT_CHARS and len(tail) > 1:
            tail.popleft()

    def _on_task(self, kind: str, data: dict[str, Any]) -> None:
        task_id = data["task_id"]
        if kind == "task.submitted":
            self._tasks[task_id] = {
                "task_id": task_id, "host": data["host"], "task": data["task"],
                "steps": [{"description": d, "state": "waiting"} for d in data["steps"]],
                "state": "submitted", "at": data["at"], "error": "",
            }  # fmt: skip
            self._output[task_id] = collections.deque()
            while len(self._tasks) > TASKS:
                old, _ = self._tasks.popitem(last=False)
                self._output.pop(old, None)
            return
        task = self._tasks.get(task_id)
        if task is None:
            return
        if kind == "task.started":
            task["state"] = "running"
            if task["steps"]:
                task["steps"][0]["state"] = "running"
        elif kind == "task.step_finished":
            index = data["index"]
            if index < len(task["steps"]):
                task["steps"][index].update(
                    state="ok" if data["ok"] else "failed",
                    exit_code=data["exit_code"],
                    seconds=data["seconds"],
                )
            if data["ok"] and index + 1 < len(task["steps"]):
                task["steps"][index + 1]["state"] = "running"
        else:
            task["state"] = kind.split(".")[1]
            task["error"] = data.get("error") or data.get("reason") or ""
            for step in task["steps"]:
                if step["state"] == "running":
                    step["state"] = "cancelled" if kind == "task.cancelled" else "failed"

    def tasks(self) -> list[dict[str, Any]]:
        """Every remembered task, newest first, without output."""
        with self._lock:
            return [dict(task) for task in reversed(self._tasks.values())]

    def task(self, task_id: int) -> dict[str, Any] | None:
        """One task with its output tail, or None."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return {**task, "output": "".join(self._output.get(task_id, ()))}

    def exits(self, host: str, name: str) -> list[dict[str, Any]]:
        """A supervised process's exits (each: code, signal, last lines, restarting)."""
        with self._lock:
            return list(self._exits.get((host, name), ()))

    def recent_events(self) -> list[dict[str, Any]]:
        """The recent events, oldest first."""
        with self._lock:
            return list(self.recent)
