"""A runtime's "processes", as lazycluster calls them: its asynchronous tasks and its
port exposures, each under a stable key.

lazycluster ran each in a ``multiprocessing.Process``; here they are actors, and each
has a handle with ``multiprocessing.Process``'s face (``name``, ``is_alive()``,
``join()``, ``terminate()``, ``kill()``, ``pid``, ``exitcode``). Keys keep lazycluster's
``::``-delimited format:

* ``<host>::task::<task name>`` for an asynchronous task,
* ``<host>::-L::<local port>::<runtime port>`` for ``expose_port_from_runtime``,
* ``<host>::-R::<runtime port>::<local port>`` for ``expose_port_to_runtime``.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Protocol

from actorcluster.errors import UnknownProcessKeyError
from actorcluster.tunnels import DELIMITER, FROM_RUNTIME, TO_RUNTIME

if TYPE_CHECKING:
    from actorcluster.runtimes.task import RuntimeTask

__all__ = [
    "TASK",
    "ProcessFace",
    "ProcessHandle",
    "ProcessTable",
    "TaskProcess",
    "is_port_exposure_key",
    "is_task_key",
    "task_key",
]

TASK = "task"
"""The second part of a task's process key."""


def task_key(host: str, task_name: str) -> str:
    """The process key of a task."""
    return DELIMITER.join((host, TASK, task_name))


def is_task_key(key: str) -> bool:
    """Whether the key belongs to a task execution."""
    parts = key.split(DELIMITER)
    return len(parts) > 2 and parts[1] == TASK


def is_port_exposure_key(key: str) -> bool:
    """Whether the key belongs to a port exposure (a tunnel)."""
    parts = key.split(DELIMITER)
    return len(parts) > 3 and parts[1] in (FROM_RUNTIME, TO_RUNTIME)


class ProcessHandle(Protocol):
    """A managed process: a running task or a port exposure."""

    key: str
    """Its process key."""

    @property
    def name(self) -> str:
        """The process key (``multiprocessing.Process.name``'s role)."""

    @property
    def pid(self) -> int | None:
        """An OS process id, where one process carries it (else None)."""

    @property
    def exitcode(self) -> int | None:
        """None while alive; 0 after a normal end, 1 after a failure, ``-SIGTERM``
        after :meth:`terminate` (``multiprocessing``'s convention)."""

    def is_alive(self) -> bool:
        """Whether it still runs."""

    def terminate(self) -> None:
        """Stop it (a task's remote process group is killed; a tunnel's listener and
        channels are closed)."""

    def kill(self) -> None:
        """The same as :meth:`terminate`."""

    def join(self, timeout: float | None = None) -> None:
        """Wait until it ended."""


class ProcessFace:
    """What a task's and a tunnel's process handles share: ``multiprocessing.Process``'s
    face over one key; subclasses say whether it lives and how it stops."""

    key: str

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "ended"
        return f"<{type(self).__name__} {self.key} {state}>"

    @property
    def name(self) -> str:
        """The process key."""
        return self.key

    @property
    def pid(self) -> None:
        """No one local process carries it."""
        return None

    def is_alive(self) -> bool:
        """Whether it still runs."""
        raise NotImplementedError

    def terminate(self) -> None:
        """Stop it."""
        raise NotImplementedError

    def kill(self) -> None:
        """As :meth:`terminate`."""
        self.terminate()


class TaskProcess(ProcessFace):
    """The process handle of an asynchronous task (``task.process``)."""

    def __init__(self, key: str, task: RuntimeTask) -> None:
        self.key = key
        self.task = task

    @property
    def exitcode(self) -> int | None:
        """None while running; 0 ok, 1 failed, ``-SIGTERM`` cancelled."""
        return self.task.exit_status

    def is_alive(self) -> bool:
        """Whether the task is still running."""
        return self.task.is_running

    def terminate(self) -> None:
        """Cancel the task: its remote process group is killed."""
        self.task.stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the task ended (``omit_on_join`` aside: a process's join waits)."""
        self.task._wait(timeout)


CANCELLED_EXIT = -signal.SIGTERM
"""The exit code of a stopped process (``multiprocessing``: killed by SIGTERM)."""


class ProcessTable:
    """A runtime's processes by key; thread-safe."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._processes: dict[str, ProcessHandle] = {}

    def add(self, handle: ProcessHandle) -> None:
        """Add (or replace) the process under its key."""
        with self._lock:
            self._processes[handle.key] = handle

    def get(self, key: str) -> ProcessHandle:
        """The process with that key.

        Raises:
            UnknownProcessKeyError: unknown key (also a ``ValueError`` and ``KeyError``).
        """
        with self._lock:
            handle = self._processes.get(key)
        if handle is None:
            raise UnknownProcessKeyError(key, self._host)
        return handle

    def all(self, only_alive: bool = False) -> dict[str, ProcessHandle]:
        """Every process by key, or only the alive ones (a new dict)."""
        with self._lock:
            processes = dict(self._processes)
        if only_alive:
            return {key: handle for key, handle in processes.items() if handle.is_alive()}
        return processes

    def discard(self, handle: ProcessHandle) -> None:
        """Drop ``handle`` if it is still the process under its key (a later run of a
        task of the same name replaced it otherwise)."""
        with self._lock:
            if self._processes.get(handle.key) is handle:
                del self._processes[handle.key]

    def forget_tasks(self) -> None:
        """Drop every task's process, running or not (port exposures stay)."""
        with self._lock:
            for key in [key for key in self._processes if is_task_key(key)]:
                del self._processes[key]

    def stop_all(self) -> None:
        """Terminate every alive process."""
        for handle in self.all(only_alive=True).values():
            handle.terminate()
