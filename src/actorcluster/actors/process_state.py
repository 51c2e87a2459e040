"""What a supervised long-running process went through, shared by its incarnations.

A :class:`~actorcluster.actors.process.ProcessActor` is replaced on every restart; the
:class:`ProcessState` it writes to outlives it, so whoever holds the process (a
``SupervisedProcess`` handle, a cluster) reads one record: its status, how often it was
restarted, how it last ended, and the tail of what it printed (bounded: a process
printing for months keeps only its last :data:`TAIL_BYTES`).

The status it reports is the truth as far as the client can know it: while the
runtime's agent is not reachable (a reconnect under way) a process that was running is
``waiting for host``, with no pid, never ``running`` with a pid that may be dead. Whoever
wants to follow it subscribes (:meth:`ProcessState.subscribe`) instead of polling.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actorcluster._limits import PROCESS_TAIL_BYTES as TAIL_BYTES
from actorcluster.observe import hooks as observe
from actorcluster.remote.streams import OutputTail

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TAIL_BYTES", "ExitInfo", "ProcessSnapshot", "ProcessState", "ProcessStatus"]

_EXITS_KEPT = 20
_LINES_IN_EXIT = 20
"""Lines of output an :class:`ExitInfo` keeps."""


class ProcessStatus(str, enum.Enum):
    """Where a supervised process stands."""

    STARTING = "starting"
    """Its command is on its way to the host; its pid is not known yet."""
    RUNNING = "running"
    """Its command runs on the host, with a known pid."""
    WAITING = "waiting for host"
    """Its runtime's host is away (reconnecting): it is re-adopted if it survived, or
    started again the moment the host is back. Never counts toward the intensity."""
    RESTARTING = "restarting"
    """It exited and its supervisor starts it again after the backoff."""
    EXITED = "exited"
    """It exited and is not restarted (its restart type says so)."""
    FAILED = "failed"
    """Its supervisor gave up (too many restarts), or it could not start."""
    STOPPED = "stopped"
    """It was stopped on purpose (or with its runtime)."""


_FINISHED = frozenset({ProcessStatus.EXITED, ProcessStatus.FAILED, ProcessStatus.STOPPED})
_LIVE = frozenset({ProcessStatus.STARTING, ProcessStatus.RUNNING, ProcessStatus.RESTARTING})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitInfo:
    """How one incarnation of a supervised process ended."""

    code: int | None
    """Its exit code; None if a signal killed it or it was lost with its host."""
    signal: int | None
    """The signal that killed it, or None."""
    lost: bool
    """Whether it was lost with its host (the session ended while the host was away)."""
    output: tuple[str, ...]
    """The last lines it printed (stdout and stderr, at most 20)."""
    at: float
    """When it ended (``time.time()``)."""

    @property
    def returncode(self) -> int | None:
        """``subprocess``'s form: the code, or minus the signal; None if lost."""
        return self.code if self.signal is None else -self.signal

    def __str__(self) -> str:
        if self.lost:
            return "lost with its host"
        if self.code is None and self.signal is None:
            return "could not run"
        if self.signal is not None:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(self.signal).name}"
            return f"killed by signal {self.signal}"
        return f"exit code {self.code}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSnapshot:
    """A supervised process's status at one moment, with what goes with it.

    ``str()`` reads ``running(pid 4242)``, ``restarting(attempt 3, next in 1.6 s)``,
    ``waiting for host``, ``failed(reason)``, ``stopped``, ...
    """

    status: ProcessStatus
    """Where it stands."""
    pid: int | None
    """Its pid on the host (its process group's id); only while ``running``."""
    restart_count: int
    """Starts after the first: after its own exits, after outages, failed ones too."""
    attempt: int | None
    """While ``restarting``: the backoff's attempt number (1 for the first)."""
    next_restart_in: float | None
    """While ``restarting``: seconds until the next start."""
    reason: str | None
    """While ``failed``: why."""
    last_exit: ExitInfo | None
    """How its latest incarnation ended, if one did."""

    def __str__(self) -> str:
        match self.status:
            case ProcessStatus.RUNNING:
                return f"running(pid {self.pid})"
            case ProcessStatus.RESTARTING if self.attempt is not None:
                return f"restarting(attempt {self.attempt}, next in {self.next_restart_in:.1f} s)"
            case ProcessStatus.FAILED:
                return f"failed({self.reason})"
            case _:
                return str(self.status.value)


class ProcessState:
    """The shared record of one supervised process (all its incarnations).

    Args:
        host: the runtime's host.
        name: the process's name.
        tail_bytes: how much of its latest output is kept.
        host_ready: tells whether the runtime's agent is reachable now; while it is
            not, a live process reads ``waiting for host``.
    """

    def __init__(
        self,
        host: str,
        name: str,
        tail_bytes: int = TAIL_BYTES,
        host_ready: Callable[[], bool] | None = None,
    ) -> None:
        self.host = host
        self.name = name
        self.output = OutputTail(tail_bytes)
        """The tail of what it printed (stdout and stderr, every incarnation)."""
        self.host_ready = host_ready
        """Whether the runtime's agent is reachable now (None: not asked)."""
        self._pid: int | None = None
        self._lock = threading.Condition()
        self._status = ProcessStatus.STARTING
        self._starts = 0
        self._exits: collections.deque[int | None] = collections.deque(maxlen=_EXITS_KEPT)
        self._last_exit: ExitInfo | None = None
        self._exited_on_its_own = False
        self._error: Exception | None = None
        self._attempt: int | None = None
        self._next_at: float | None = None
        self._running = 0  # incarnations whose command has not ended on the host yet
        self._on_exit: list[Callable[[int | None], None]] = []
        self._listeners: list[Callable[[ProcessState], None]] = []

    def __repr__(self) -> str:
        return f"<ProcessState {self.host}/{self.name} {self.status.value} starts={self._starts}>"

    # --- read -----------------------------------------------------------------------

    @property
    def status(self) -> ProcessStatus:
        """Where it stands now (``waiting for host`` while its host is away)."""
        with self._lock:
            status = self._status
        if status in _LIVE and self.host_ready is not None and not self.host_ready():
            return ProcessStatus.WAITING
        return status

    @property
    def pid(self) -> int | None:
        """The pid of the incarnation running now (its process group's id too); None
        unless it is ``running``."""
        return self._pid if self.status is ProcessStatus.RUNNING else None

    @pid.setter
    def pid(self, pid: int | None) -> None:
        """The running incarnation's pid became known: it is ``running``."""
        with self._lock:
            self._pid = pid
            if pid is not None and self._status is ProcessStatus.STARTING:
                self._status = ProcessStatus.RUNNING
        self._changed()

    def snapshot(self) -> ProcessSnapshot:
        """Its status and what goes with it, at one moment."""
        status = self.status
        with self._lock:
            next_in = None
            if status is ProcessStatus.RESTARTING and self._next_at is not None:
                next_in = max(0.0, self._next_at - time.monotonic())
            return ProcessSnapshot(
                status=status,
                pid=self._pid if status is ProcessStatus.RUNNING else None,
                restart_count=max(0, self._starts - 1),
                attempt=self._attempt if status is ProcessStatus.RESTARTING else None,
                next_restart_in=next_in,
                reason=str(self._error) if status is ProcessStatus.FAILED else None,
                last_exit=self._last_exit,
            )

    @property
    def starts(self) -> int:
        """How many times its command was started (or a start was tried)."""
        with self._lock:
            return self._starts

    @property
    def restart_count(self) -> int:
        """How many times it was started again after the first start (after its own
        exits and after outages, failed starts included)."""
        with self._lock:
            return max(0, self._starts - 1)

    @property
    def exit_codes(self) -> list[int | None]:
        """How its latest incarnations ended, oldest first (negative: killed by that
        signal; None: lost with its host)."""
        with self._lock:
            return list(self._exits)

    @property
    def last_exit(self) -> ExitInfo | None:
        """How its latest incarnation ended, or None."""
        with self._lock:
            return self._last_exit

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
            return self._status in _FINISHED

    def wait(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``condition()`` holds; False on timeout. The condition is read
        under the state's lock and again whenever the state (or its host) changes."""
        with self._lock:
            return self._lock.wait_for(condition, timeout)

    def wait_gone(self, timeout: float) -> bool:
        """Wait until no incarnation's command runs on the host any more."""
        with self._lock:
            return self._lock.wait_for(lambda: self._running == 0, timeout)

    @property
    def gone(self) -> bool:
        """Whether no incarnation's command runs on the host."""
        with self._lock:
            return self._running == 0

    def on_exit(self, callback: Callable[[int | None], None]) -> None:
        """Call ``callback(code)`` each time an incarnation ends by itself (on the
        process actor's thread; keep it short)."""
        with self._lock:
            self._on_exit.append(callback)

    def subscribe(self, listener: Callable[[ProcessState], None]) -> Callable[[], None]:
        """Call ``listener(state)`` after every change (on whichever thread made it;
        keep it short, never block); returns what unsubscribes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def host_changed(self) -> None:
        """The runtime's host went away or came back: wake waiters and listeners."""
        self._changed()

    # --- written by the process actor and its supervisor ------------------------------

    def began(self) -> int:
        """An incarnation's command was sent to the host; its number (1 for the first)."""
        with self._lock:
            self._starts += 1
            self._running += 1
            self._pid = None
            self._status = ProcessStatus.STARTING
            self._exited_on_its_own = False
            self._attempt = self._next_at = None
            starts = self._starts
        self._changed()
        return starts

    def not_begun(self) -> None:
        """The command :meth:`began` could not even be sent (its host went just then)."""
        with self._lock:
            self._starts = max(0, self._starts - 1)
            self._running = max(0, self._running - 1)
        self._changed()

    def ended(self) -> None:
        """An incarnation's command is gone from the host (exited, killed or lost)."""
        with self._lock:
            self._running = max(0, self._running - 1)
        self._changed()

    def exited(self, code: int | None, *, restarting: bool, lost: bool = False) -> None:
        """An incarnation ended by itself with ``code`` (negative: a signal; None with
        ``lost``: lost with its host); ``restarting``: it will be started again."""
        info = _exit_info(code, lost, self.output.text(8192))
        with self._lock:
            self._exits.append(code)
            self._last_exit = info
            self._pid = None
            self._exited_on_its_own = True
            if self._status not in _FINISHED:
                if lost and restarting:
                    self._status = ProcessStatus.WAITING
                else:
                    self._status = ProcessStatus.RESTARTING if restarting else ProcessStatus.EXITED
            callbacks = list(self._on_exit)
        self._changed()
        for callback in callbacks:
            callback(code)

    def waiting(self) -> None:
        """It waits for its host (its supervision restarts with its runtime's)."""
        self._set(ProcessStatus.WAITING)

    def restarted_by_owner(self) -> None:
        """It exited for good by its own restart type, but its owner (a cluster's
        coordinator restarting its master) starts it again: it is ``restarting``."""
        with self._lock:
            if self._status is not ProcessStatus.EXITED:
                return
            self._status = ProcessStatus.RESTARTING
        self._changed()

    def restart_scheduled(self, attempt: int, delay: float) -> None:
        """Its supervisor starts it again in ``delay`` seconds (backoff ``attempt``, 0
        for the first)."""
        with self._lock:
            if self._status in _FINISHED:
                return
            self._status = ProcessStatus.RESTARTING
            self._attempt = attempt + 1
            self._next_at = time.monotonic() + delay
        self._changed()

    def stopped(self, error: Exception | None = None) -> None:
        """It will not run again: stopped on purpose, or (``error``) given up on."""
        with self._lock:
            if error is not None and self._status is not ProcessStatus.STOPPED:
                self._error = error
                self._status = ProcessStatus.FAILED
            elif self._status not in _FINISHED:
                self._status = ProcessStatus.STOPPED
            self._pid = None
        self._changed()
        observe.process_ended(self, error)

    def _set(self, status: ProcessStatus) -> None:
        with self._lock:
            if self._status in _FINISHED:
                return
            self._status = status
            self._pid = None
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            self._lock.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self)


def _exit_info(code: int | None, lost: bool, output: str) -> ExitInfo:
    lines = tuple(output.splitlines()[-_LINES_IN_EXIT:])
    if code is not None and code < 0:
        return ExitInfo(code=None, signal=-code, lost=False, output=lines, at=time.time())
    return ExitInfo(code=code, signal=None, lost=lost, output=lines, at=time.time())
