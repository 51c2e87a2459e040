"""A launcher's own ``subprocess.Popen`` (lazycluster's ``LocalMasterLauncher`` stores
one in ``self._process``), watched and stopped by the cluster's coordinator.

:class:`PopenActor` is the coordinator's child for such a process: a thread waits on
the ``Popen`` so that its exit is noticed at once, the actor then crashes and the
coordinator restarts it, which calls ``relaunch`` (the launcher's ``start`` again, for
the same port) for a fresh ``Popen``. :func:`stop_popen` ends the process and every
process it started (found through ``/proc``: a ``Popen`` need not have a process group
of its own), politely first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import STOP_GRACE, Deadline
from actorcluster._logging import get_logger
from actorcluster._workers import THREADS
from actorcluster.errors import ProcessExitedError
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.runtimes.supervised import ProcessState

__all__ = ["PopenActor", "descendants", "stop_popen"]

log = get_logger(__name__)


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = entry.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        text = stat.read_text()
        return text[text.rindex(")") + 2] != "Z"  # a zombie is gone, only not reaped
    return True


def stop_popen(process: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """End ``process`` and every process it started: SIGTERM, ``grace`` seconds, then
    SIGKILL; reaps ``process``."""
    tree = descendants(process.pid)
    if process.poll() is None:
        _signal([process.pid], signal.SIGTERM)
    _signal(tree, signal.SIGTERM)
    deadline = Deadline(grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    rest = [pid for pid in tree if _alive(pid)]
    while rest and not deadline.expired():
        time.sleep(0.02)
        rest = [pid for pid in rest if _alive(pid)]
    if process.poll() is None:
        process.kill()
        process.wait(grace)
    _signal(rest + descendants(process.pid), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class _Exited:
    """Internal: the watched process exited."""

    code: int


class PopenActor(SupervisedActor):
    """Watches one incarnation of a launcher's local ``Popen``.

    Args:
        popen: the running process (first incarnation), or None: call ``relaunch``.
        relaunch: starts it again (the launcher's ``start`` for the same port) and
            returns the new ``Popen``.
        state: the record shared by every incarnation (status, pid, exit codes).
    """

    def __init__(
        self,
        popen: subprocess.Popen[Any] | None,
        relaunch: Callable[[], subprocess.Popen[Any]],
        state: ProcessState,
    ) -> None:
        super().__init__()
        self._popen = popen
        self._relaunch = relaunch
        self._state = state
        self._stopping = False
        self._gone = False

    def __repr__(self) -> str:
        pid = self._popen.pid if self._popen is not None else None
        return f"<PopenActor {self._state.name} pid={pid}>"

    def on_start(self) -> None:
        """Take the process (relaunching it if none is given) and watch it."""
        super().on_start()
        popen = self._popen if self._popen is not None else self._relaunch()
        self._popen = popen
        self._state.began()
        self._state.pid = popen.pid
        THREADS.start(self._watch, popen, name=f"watch-{self._state.name}")
        log.debug("cluster.popen.watched", process=self._state.name, pid=popen.pid)

    def _watch(self, popen: subprocess.Popen[Any]) -> None:
        code = popen.wait()
        if self._stopping:
            return
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Exited(code))

    def on_receive(self, message: Any) -> Any:
        """Dispatch."""
        match message:
            case _Exited(code=code):
                self._mark_gone()
                self._state.exited(code, restarting=True)
                log.info("cluster.popen.exited", process=self._state.name, code=code)
                raise ProcessExitedError(self._state.host, self._state.name, code)
            case _:
                return super().on_receive(message)

    def on_exit(self, error: BaseException | None) -> None:
        """Stop the process (and its children) if it still runs."""
        popen = self._popen
        if popen is None:
            return
        self._stopping = True
        if popen.poll() is None or descendants(popen.pid):
            stop_popen(popen)
        self._mark_gone()

    def _mark_gone(self) -> None:
        if not self._gone:
            self._gone = True
            self._state.ended()
