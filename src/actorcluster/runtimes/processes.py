"""The process bookkeeping part of :class:`~actorcluster.runtimes.runtime.Runtime`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster.errors import UnknownProcessKeyError
from actorcluster.runtimes.process_handles import DELIMITER, TASK, TaskProcess, task_key

if TYPE_CHECKING:
    from actorcluster.runtimes.process_handles import ProcessHandle
    from actorcluster.runtimes.task import RuntimeTask

__all__ = ["RuntimeProcessesMixin"]

_PORT_TO_RUNTIME = "-R"
_PORT_FROM_RUNTIME = "-L"


class RuntimeProcessesMixin:
    """Tasks and port exposures as lazycluster's keyed "processes"."""

    _host: str

    def _init_processes(self) -> None:
        self._processes: dict[str, ProcessHandle] = {}
        self._processes_lock = threading.Lock()

    def _register_task_process(self, task: RuntimeTask) -> None:
        key = task_key(self._host, task.name)
        with self._processes_lock:
            self._processes[key] = TaskProcess(key, task)

    def _register_process(self, handle: ProcessHandle) -> None:
        with self._processes_lock:
            self._processes[handle.key] = handle

    def _forget_task_processes(self) -> None:
        with self._processes_lock:
            for key in [key for key in self._processes if self.is_runtime_task_process(key)]:
                if not self._processes[key].is_alive():
                    del self._processes[key]

    @classmethod
    def is_runtime_task_process(cls, process_key: str) -> bool:
        """Whether the key belongs to a task execution."""
        parts = process_key.split(DELIMITER)
        return len(parts) > 2 and parts[1] == TASK

    @classmethod
    def is_port_exposure_process(cls, process_key: str) -> bool:
        """Whether the key belongs to a port exposure (a tunnel)."""
        parts = process_key.split(DELIMITER)
        return len(parts) > 3 and parts[1] in (_PORT_FROM_RUNTIME, _PORT_TO_RUNTIME)

    def get_process(self, key: str) -> ProcessHandle:
        """The process with that key.

        Raises:
            ValueError: unknown key (an :class:`UnknownProcessKeyError`).
        """
        with self._processes_lock:
            handle = self._processes.get(key)
        if handle is None:
            raise UnknownProcessKeyError(key, self._host)
        return handle

    def get_processes(self, only_alive: bool = False) -> dict[str, ProcessHandle]:
        """All processes by key, or only the alive ones."""
        with self._processes_lock:
            processes = dict(self._processes)
        if only_alive:
            return {key: handle for key, handle in processes.items() if handle.is_alive()}
        return processes

    def stop_process(self, key: str) -> None:
        """Stop the process with that key.

        Raises:
            ValueError: unknown key (an :class:`UnknownProcessKeyError`).
        """
        self.get_process(key).terminate()

    @property
    def task_processes(self) -> list[ProcessHandle]:
        """The processes of tasks."""
        return [h for k, h in self.get_processes().items() if self.is_runtime_task_process(k)]

    @property
    def alive_process_count(self) -> int:
        """How many processes are alive."""
        return len(self.get_processes(only_alive=True))

    @property
    def alive_task_process_count(self) -> int:
        """How many task processes are alive."""
        return sum(1 for handle in self.task_processes if handle.is_alive())

    def _stop_all_processes(self) -> None:
        for handle in self.get_processes(only_alive=True).values():
            handle.terminate()
