"""Supervised background processes: a long-running command kept alive on a runtime.

``runtime.supervise("exec my-server --port 9000", restart="permanent", max_restarts=5,
period=60)`` starts the command through the runtime's agent (its own process group on
the host, its output kept as a bounded tail) in the runtime's own subtree::

    RuntimeSupervisor[host]
    └── ProcessesSupervisor
        └── ProcessSupervisor[name]   its restart policy
            └── ProcessActor          the command

So it stops with its runtime, and with a ``SupervisionTree`` holding the runtime. An
exit is noticed the moment it happens and the command is restarted by OTP's rules, with
backoff, at most ``max_restarts`` times in ``period`` seconds (``max_restarts=None``:
forever); past that it is ``failed``. While the host is away the process is ``waiting
for host``: re-adopted if it lived through the outage, started again the moment the
host is back, and none of that counts toward the intensity (see
:mod:`actorcluster.actors.process`). ``docs/guide/processes.md`` tells the whole story.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import signal
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import ASK_TIMEOUT as _ASK_TIMEOUT
from actorcluster._limits import PROCESS_STOP_TIMEOUT as STOP_TIMEOUT
from actorcluster._limits import Deadline
from actorcluster._logging import get_logger
from actorcluster.actors.process import ProcessSpec
from actorcluster.actors.process_state import ExitInfo, ProcessSnapshot, ProcessState, ProcessStatus
from actorcluster.actors.process_tree import (
    ProcessEntry,
    ProcessSupervisor,
    RestartPolicy,
    sync_processes,
)
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.runtimes.popen_like import PopenLike
from actorcluster.runtimes.process_waits import wait_first_run, wait_state_async
from actorcluster.supervisors import Backoff, Restart, supervisor_proxy
from actorcluster.tunnels import DELIMITER

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = [
    "DEFAULT_BACKOFF",
    "FOREVER_BACKOFF",
    "PROCESS",
    "ExitInfo",
    "ProcessSpec",
    "ProcessState",
    "ProcessStatus",
    "ProcessSupervisor",
    "RestartPolicy",
    "SupervisedProcess",
    "parse_restart",
    "stop_many",
    "supervise",
    "supervise_async",
    "supervise_process",
    "wait_first_run",
]

log = get_logger(__name__)

PROCESS = "process"
"""The second part of a supervised process's key (``<host>::process::<name>``)."""
DEFAULT_BACKOFF = Backoff(initial=0.1, maximum=5.0)
"""Delay between restarts of a supervised process unless another is given."""
FOREVER_BACKOFF = Backoff(initial=0.5, maximum=60.0, multiplier=2.0, jitter=0.2)
"""Delay between restarts with ``max_restarts=None`` unless another is given (also in
place of ``backoff=None``: restarting forever at once would be a hot loop)."""
_ids = itertools.count(1)


def parse_restart(restart: object) -> Restart:
    """``"permanent"``, ``"transient"``, ``"temporary"`` (or a :class:`Restart`).

    Raises:
        UsageError: anything else.
    """
    if isinstance(restart, Restart):
        return restart
    if isinstance(restart, str):
        with contextlib.suppress(ValueError):
            return Restart(restart.lower())
    names = ", ".join(repr(item.value) for item in Restart)
    raise UsageError(f"restart must be one of {names}, not {restart!r}")


class SupervisedProcess(PopenLike):
    """A long-running command kept alive on a runtime (see the module docstring).

    It has ``multiprocessing.Process``'s face too (``name``, ``pid``, ``is_alive()``,
    ``join()``, ``terminate()``, ``exitcode``), so it is listed among the runtime's
    processes.

    Args:
        key: ``<host>::process::<name>``.
        state: its shared record.
        stop: stops it, waiting until its supervision ended.
        request_stop: asks for the stop without waiting (None: ``stop`` runs on a thread).
        restart: kills the current run and starts it again at once (None: not offered).
    """

    def __init__(
        self,
        key: str,
        state: ProcessState,
        stop: Callable[[], None],
        request_stop: Callable[[], None] | None = None,
        restart: Callable[[], None] | None = None,
    ) -> None:
        self.key = key
        self._state = state
        self._stop = stop
        self._request_stop = request_stop
        self._restart = restart

    def __repr__(self) -> str:
        state = self._state
        return f"<SupervisedProcess {self.key} {state.snapshot()} restarts={state.restart_count}>"

    @property
    def name(self) -> str:
        """The process key."""
        return self.key

    @property
    def host(self) -> str:
        """The runtime's host."""
        return self._state.host

    @property
    def state(self) -> ProcessState:
        """Its shared record (status, pid, exits, output), for an owner that builds on
        the service (a cluster's coordinator waits on it)."""
        return self._state

    @property
    def status(self) -> str:
        """``starting``, ``running``, ``waiting for host``, ``restarting``, ``exited``,
        ``failed`` or ``stopped`` (:attr:`snapshot` has the details)."""
        return self._state.status.value

    @property
    def snapshot(self) -> ProcessSnapshot:
        """Its status with what goes with it (pid, attempt and next restart, reason,
        last exit); ``str()`` of it reads ``running(pid 4242)``, ``restarting(attempt 2,
        next in 0.4 s)``, ``failed(...)``."""
        return self._state.snapshot()

    @property
    def restart_count(self) -> int:
        """How many times the command was started again: after its own exits, after
        outages, failed starts included."""
        return self._state.restart_count

    @property
    def exit_codes(self) -> list[int | None]:
        """How its latest runs ended, oldest first (negative: killed by that signal;
        None: lost with its host)."""
        return self._state.exit_codes

    @property
    def last_exit(self) -> ExitInfo | None:
        """How its latest run ended (code or signal, last output lines), or None."""
        return self._state.last_exit

    @property
    def error(self) -> Exception | None:
        """Why supervision gave up (a :class:`~actorcluster.errors.SupervisorGaveUpError`),
        or None."""
        return self._state.error

    def output(self, limit: int | None = None) -> str:
        """The latest output (stdout and stderr, bounded), its last ``limit`` characters."""
        return self._state.output.text(limit)

    @property
    def pid(self) -> int | None:
        """Its pid on the host (its process group's id) while it is ``running``; None
        otherwise (never a pid that may be dead)."""
        return self._state.pid

    @property
    def exitcode(self) -> int | None:
        """None while supervised; then its last exit code (``-SIGTERM`` once stopped)."""
        state = self._state
        if not state.finished:
            return None
        if state.status is ProcessStatus.STOPPED:
            return -signal.SIGTERM
        codes = state.exit_codes
        return codes[-1] if codes and codes[-1] is not None else 1

    def is_alive(self) -> bool:
        """Whether it runs or will be run again (restarting, waiting for its host)."""
        return not self._state.finished

    def subscribe(self, listener: Callable[[ProcessState], None]) -> Callable[[], None]:
        """Call ``listener(state)`` on every change of status (exits included), on
        whichever thread made it (keep it short); returns what unsubscribes it."""
        return self._state.subscribe(listener)

    def on_exit(self, callback: Callable[[ExitInfo], None]) -> None:
        """Call ``callback(exit)`` each time a run ends by itself (or is lost with its
        host), before any restart; on whichever thread saw it (keep it short)."""
        state = self._state

        def exited(_code: int | None) -> None:
            info = state.last_exit
            if info is not None:
                callback(info)

        state.on_exit(exited)

    def _running(self) -> bool:
        return self._state.finished or self._state.status is ProcessStatus.RUNNING

    def wait_running(self, timeout: float = 30.0) -> bool:
        """Wait until its command runs with its pid known (after a start, a restart or
        an outage); False on timeout or once it will not run again."""
        self._state.wait(self._running, timeout)
        return self._state.status is ProcessStatus.RUNNING

    async def wait_running_async(self, timeout: float = 30.0) -> bool:
        """:meth:`wait_running` without blocking the event loop; cancelling it only
        stops the wait."""
        await wait_state_async(self._state, self._running, timeout)
        return self._state.status is ProcessStatus.RUNNING

    def wait_restarted(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until it was restarted at least ``count`` times and runs; False on
        timeout or once it will not run again."""
        state = self._state

        def done() -> bool:
            return state.finished or (
                state.restart_count >= count and state.status is ProcessStatus.RUNNING
            )

        state.wait(done, timeout)
        return state.restart_count >= count and state.status is ProcessStatus.RUNNING

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop supervising and kill the command's process group; wait (bounded) until
        it is gone from the host."""
        self._stop()
        self._state.stopped()
        if not self._state.wait_gone(timeout):
            log.warning("process.stop.timeout", process=self.key, seconds=timeout)

    async def stop_async(self, timeout: float = STOP_TIMEOUT) -> None:
        """:meth:`stop` without blocking the event loop. The stop is asked for at once
        and always happens; cancelling this only stops the wait for the process to be
        gone."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        if self._request_stop is not None:
            self._request_stop()
            self._state.stopped()
        else:
            await asyncio.shield(asyncio.to_thread(self._stop))
            self._state.stopped()
        state = self._state
        if not await wait_state_async(state, lambda: state.gone, timeout):
            log.warning("process.stop.timeout", process=self.key, seconds=timeout)

    def stop_nowait(self) -> None:
        """Ask for the stop (nothing restarts it any more) without waiting until the
        command is gone; :func:`stop_many` stops many and waits once."""
        if self._request_stop is not None:
            self._request_stop()
        else:
            self._stop()
        self._state.stopped()

    def restart(self) -> None:
        """Kill the current run and start the command again at once (its owner's
        choice: a cluster restarts its workers after their master); not counted
        toward the restart intensity. Nothing happens once it will not run again.

        Raises:
            UsageError: this handle offers no restart.
        """
        if self._restart is None:
            raise UsageError(f"{self.key} cannot be restarted through this handle")
        self._restart()

    def terminate(self) -> None:
        """As :meth:`stop`."""
        self.stop()

    def kill(self) -> None:
        """As :meth:`stop`."""
        self.stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait until it will not run again (stopped, exited for good, or failed)."""
        state = self._state
        state.wait(lambda: state.finished, STOP_TIMEOUT * 8 if timeout is None else timeout)


def _policy(
    restart: object, max_restarts: int | None, period: object, backoff: Backoff | None
) -> RestartPolicy:
    kind = parse_restart(restart)
    if max_restarts is not None and (
        not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0
    ):
        raise UsageError(f"max_restarts must be an int >= 0 or None, not {max_restarts!r}")
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not period > 0:
        raise UsageError(f"period must be a number of seconds > 0, not {period!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise UsageError(f"backoff must be a Backoff or None, not {backoff!r}")
    if max_restarts is None and (backoff is None or backoff is DEFAULT_BACKOFF):
        backoff = FOREVER_BACKOFF  # forever, at once, would be a hot loop
    return RestartPolicy(
        restart=kind, max_restarts=max_restarts, period=float(period), backoff=backoff
    )


def supervise(
    handle: RuntimeHandle,
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    name: str | None = None,
    restart: object = "permanent",
    max_restarts: int | None = 5,
    period: float = 60.0,
    backoff: Backoff | None = DEFAULT_BACKOFF,
) -> SupervisedProcess:
    """Keep ``command`` running on ``handle``'s runtime, in the runtime's subtree.

    Returns at once: the process is ``starting`` (or ``waiting for host`` while a
    reconnect is under way); :meth:`SupervisedProcess.wait_running` waits for its pid.

    Raises:
        UsageError: a bad argument (names it), a process of that name is supervised
            already, or the runtime was stopped.
    """
    handle.check_running()
    if not isinstance(command, str) or not command.strip():
        raise UsageError(f"command must be a non-empty string, not {command!r}")
    policy = _policy(restart, max_restarts, period, backoff)
    label = name if name else f"process-{next(_ids)}"
    if not isinstance(label, str) or DELIMITER in label:
        raise UsageError(f"name must be a string without {DELIMITER!r}: {label!r}")
    spec = ProcessSpec(
        name=label,
        command=command,
        env={str(k): str(v) for k, v in (env or {}).items()},
        cwd=cwd,
        restart=policy.restart,
        wait_for_host=True,
    )
    return supervise_process(handle, spec, policy)


def stop_many(processes: list[SupervisedProcess], timeout: float = STOP_TIMEOUT) -> bool:
    """Stop ``processes`` all at once and wait (bounded by ``timeout`` in all) until
    each is gone from its host; False if one was still there (logged)."""
    for process in processes:
        process.stop_nowait()
    deadline = Deadline(timeout)
    all_gone = True
    for process in processes:
        if not process.state.wait_gone(deadline.remaining()):
            log.warning("process.stop.timeout", process=process.key, seconds=timeout)
            all_gone = False
    return all_gone


def supervise_process(
    handle: RuntimeHandle,
    spec: ProcessSpec,
    policy: RestartPolicy,
    *,
    label: str | None = None,
    wait_for_host: bool = True,
) -> SupervisedProcess:
    """The one process-supervision service: keep ``spec`` running on ``handle``'s
    runtime, in its subtree, restarted by ``policy``; returns the handle at once.

    What :func:`supervise` (and so ``Runtime.supervise``) uses, and what a cluster
    coordinator uses for its masters and workers: a spec in, a handle out, whose
    :meth:`SupervisedProcess.subscribe` tells every change of status (exits
    included, with :attr:`SupervisedProcess.last_exit`), so the coordinator keeps its
    role logic (master first, rest_for_one) above it.

    ``label``: its id among the runtime's processes (default: ``spec.name``; an owner
    starting many of one name gives each its own). ``wait_for_host=False``: a lost
    host is an exit like any other (counted by the policy), as a cluster wants.

    Raises:
        UsageError: a process of that label is supervised already on this runtime, or
            the runtime was stopped.
    """
    handle.check_running()
    if spec.restart is not policy.restart or spec.wait_for_host is not wait_for_host:
        spec = dataclasses.replace(spec, restart=policy.restart, wait_for_host=wait_for_host)
    registry, context = handle.context.processes, handle.context
    label = spec.name if label is None else label
    state = ProcessState(handle.host, spec.name, host_ready=lambda: context.ready)
    entry = ProcessEntry(id=label, spec=spec, policy=policy, state=state)
    sync_processes(registry.add(entry))

    def request_stop() -> None:
        sync_processes(registry.discard(label, entry))

    def stop() -> None:
        ref = registry.discard(label, entry)
        if ref is None:
            return  # no supervisor now: the next one will not start it
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError, pykka.Timeout):
            supervisor_proxy(ref).terminate_child(label).get(timeout=_ASK_TIMEOUT)

    def restart() -> None:
        parent = registry.supervisor
        if parent is None or not registry.wants(entry):
            return  # not running now: its next supervisor starts it afresh anyway
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError, pykka.Timeout):
            children = supervisor_proxy(parent).which_children().get(timeout=_ASK_TIMEOUT)
            for child in children:
                if child.id == label and child.ref is not None:
                    proxy = supervisor_proxy(child.ref)
                    proxy.terminate_child(label).get(timeout=_ASK_TIMEOUT)
                    proxy.restart_child(label).get(timeout=_ASK_TIMEOUT)

    key = DELIMITER.join((handle.host, PROCESS, label))
    log.info("process.supervised", host=handle.host, process=label, restart=policy.restart.value)
    return SupervisedProcess(key, state, stop, request_stop, restart)


async def supervise_async(
    handle: RuntimeHandle,
    command: str,
    *,
    wait_running: bool = True,
    timeout: float = 60.0,
    **options: Any,
) -> SupervisedProcess:
    """:func:`supervise`, then :func:`wait_first_run`.

    Raises:
        UsageError: as :func:`supervise`.
        FutureTimeoutError, SupervisorGaveUpError: as :func:`wait_first_run`.
    """
    process = supervise(handle, command, **options)
    await wait_first_run(process, wait_running=wait_running, timeout=timeout)
    return process
