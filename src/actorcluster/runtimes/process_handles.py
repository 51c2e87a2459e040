"""Process handles: what lazycluster calls the "processes" of a runtime.

lazycluster ran each asynchronous task and each port exposure in a
``multiprocessing.Process``. Here they are actors; a :class:`ProcessHandle` gives the
same surface (``is_alive``, ``terminate``, ``join``) over them.

Process keys keep lazycluster's stable format, ``::``-delimited:

* ``<host>::task::<task name>`` for an asynchronous task,
* ``<host>::-L::<local port>::<runtime port>`` for ``expose_port_from_runtime``,
* ``<host>::-R::<runtime port>::<local port>`` for ``expose_port_to_runtime``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["DELIMITER", "TASK", "ProcessHandle", "TaskProcess", "task_key"]

DELIMITER = "::"
TASK = "task"


def task_key(host: str, task_name: str) -> str:
    """The process key of a task."""
    return DELIMITER.join((host, TASK, task_name))


class ProcessHandle(Protocol):
    """A managed process: a running task or a port exposure."""

    key: str
    """Its process key."""

    def is_alive(self) -> bool:
        """Whether it still runs."""

    def terminate(self) -> None:
        """Stop it (a task's remote process group is killed; a tunnel's listener and
        channels are closed)."""

    def join(self, timeout: float | None = None) -> None:
        """Wait until it ended."""


class TaskProcess:
    """The process handle of an asynchronous task."""

    def __init__(self, key: str, task: RuntimeTask) -> None:
        self.key = key
        self.task = task

    def __repr__(self) -> str:
        return f"<TaskProcess {self.key} {'alive' if self.is_alive() else 'ended'}>"

    @property
    def name(self) -> str:
        """The process key (``multiprocessing.Process.name``'s role)."""
        return self.key

    def is_alive(self) -> bool:
        """Whether the task is still running."""
        return self.task.is_running

    def terminate(self) -> None:
        """Cancel the task; its future fails with TaskCancelledError."""
        self.task.stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the task ended."""
        self.task.join(timeout)
