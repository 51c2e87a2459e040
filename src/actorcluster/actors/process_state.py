"""What a supervised long-running process went through, shared by its incarnations.

A :class:`~actorcluster.actors.process.ProcessActor` is replaced on every restart; the
:class:`ProcessState` it writes to outlives it, so whoever holds the process (a
``SupervisedProcess`` handle, a cluster) reads one record: its status, how often it was
restarted, how it last ended, and the tail of what it printed (bounded: a process
printing for months keeps only its last :data:`TAIL_BYTES`).
"""

from __future__ import annotations

import collections
import enum
import threading
from typing import TYPE_CHECKING

from actorcluster.observe import hooks as observe
from actorcluster.remote.streams import OutputTail

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TAIL_BYTES", "ProcessState", "ProcessStatus"]

TAIL_BYTES = 256 * 1024
"""Bytes of a process's latest output kept in memory."""
_EXITS_KEPT = 20


class ProcessStatus(str, enum.Enum):
    """Where a supervised process stands."""

    STARTING = "starting"
    """Not started yet (or its start request is on its way)."""
    RUNNING = "running"
    """Its command runs on the host."""
    RESTARTING = "restarting"
    """It exited and its supervisor will start it again (after the backoff)."""
    EXITED = "exited"
    """It exited and is not restarted (its restart type says so)."""
    FAILED = "failed"
    """Its supervisor gave up (too many restarts), or it could not start."""
    STOPPED = "stopped"
    """It was stopped on purpose."""


class ProcessState:
    """The shared record of one supervised process (all its incarnations).

    Args:
        host: the runtime's host.
        name: the process's name.
        tail_bytes: how much of its latest output is kept.
    """

    def __init__(self, host: str, name: str, tail_bytes: int = TAIL_BYTES) -> None:
        self.host = host
        self.name = name
        self.output = OutputTail(tail_bytes)
        """The tail of what it printed (stdout and stderr, every incarnation)."""
        self.pid: int | None = None
        """The latest incarnation's pid on its host (its process group's id too)."""
        self._lock = threading.Condition()
        self._status = ProcessStatus.STARTING
        self._starts = 0
        self._exits: collections.deque[int | None] = collections.deque(maxlen=_EXITS_KEPT)
        self._exited_on_its_own = False
        self._error: Exception | None = None
        self._running = 0  # incarnations whose command has not ended on the host yet
        self._on_exit: list[Callable[[int | None], None]] = []

    def __repr__(self) -> str:
        return f"<ProcessState {self.host}/{self.name} {self._status.value} starts={self._starts}>"

    # --- read -----------------------------------------------------------------------

    @property
    def status(self) -> ProcessStatus:
        """Where it stands now."""
        with self._lock:
            return self._status

    @property
    def starts(self) -> int:
        """How many times its command was started."""
        with self._lock:
            return self._starts

    @property
    def restart_count(self) -> int:
        """How many times it was started again after the first start."""
        with self._lock:
            return max(0, self._starts - 1)

    @property
    def exit_codes(self) -> list[int | None]:
        """How its latest incarnations ended, oldest first (None: lost with its agent)."""
        with self._lock:
            return list(self._exits)

    @property
    def error(self) -> Exception | None:
        """Why its supervisor gave up (or it could not start); None otherwise."""
        with self._lock:
            return self._error

    @property
    def exited_on_its_own(self) -> bool:
        """Whether its latest incarnation ended by itself (not stopped by us)."""
        with self._lock:
            return self._exited_on_its_own

    @property
    def finished(self) -> bool:
        """Whether it will not run again (exited for good, failed or stopped)."""
        with self._lock:
            return self._status in (
                ProcessStatus.EXITED,
                ProcessStatus.FAILED,
                ProcessStatus.STOPPED,
            )

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` (read under the state's lock) holds; False on timeout."""
        with self._lock:
            return self._lock.wait_for(condition, timeout)

    def wait_gone(self, timeout: float) -> bool:
        """Wait until no incarnation's command runs on the host any more."""
        with self._lock:
            return self._lock.wait_for(lambda: self._running == 0, timeout)

    def on_exit(self, callback: Callable[[int | None], None]) -> None:
        """Call ``callback(code)`` each time an incarnation ends by itself (on the
        process actor's thread; keep it short)."""
        with self._lock:
            self._on_exit.append(callback)

    # --- written by the process actor and its supervisor ------------------------------

    def began(self) -> int:
        """An incarnation's command was sent to the host; its number (1 for the first)."""
        with self._lock:
            self._starts += 1
            self._running += 1
            self._status = ProcessStatus.RUNNING
            self._exited_on_its_own = False
            self._lock.notify_all()
            return self._starts

    def ended(self) -> None:
        """An incarnation's command is gone from the host (exited, killed or lost)."""
        with self._lock:
            self._running = max(0, self._running - 1)
            self._lock.notify_all()

    def exited(self, code: int | None, *, restarting: bool) -> None:
        """An incarnation ended by itself with ``code``; ``restarting``: it will be
        started again."""
        with self._lock:
            self._exits.append(code)
            self._exited_on_its_own = True
            self._status = ProcessStatus.RESTARTING if restarting else ProcessStatus.EXITED
            callbacks = list(self._on_exit)
            self._lock.notify_all()
        for callback in callbacks:
            callback(code)

    def stopped(self, error: Exception | None = None) -> None:
        """It will not run again: stopped on purpose, or (``error``) given up on."""
        with self._lock:
            if error is not None:
                self._error = error
                self._status = ProcessStatus.FAILED
            elif self._status is not ProcessStatus.EXITED:
                self._status = ProcessStatus.STOPPED
            self._lock.notify_all()
        observe.process_ended(self, error)
