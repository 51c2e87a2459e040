"""The ClusterCoordinator: one actor per cluster, owning its ports and its processes' roles.

::

    group supervisor (or root)
    └── ClusterCoordinator[cluster-N]   the roles: master first, workers after it
        └── PopenActor(master)          only for a launcher's local ``Popen``

    RuntimeSupervisor[host] ── ProcessesSupervisor ── ProcessSupervisor[cluster-N-worker-i]
                                                      (the process service's, per process)

The master and the workers on hosts are run by the process service
(:meth:`RuntimeHandle.start_process <actorcluster.runtimes.RuntimeHandle.start_process>`),
in their runtimes' subtrees, each with the cluster's restart intensity; the coordinator
keeps only the role logic, from the service's notices (an exit, a process given up on).
A worker that exits
is started again by the service (same command, same ports, so its tunnels stay right)
after the backoff; past ``max_restarts`` in ``period`` the cluster fails. A master that
exits (once it was ready) is started again at once on the same port; once it runs, every
worker is restarted after it (OTP's ``rest_for_one``), unless its launcher says the
workers reconnect by themselves. For a ``Popen`` a launcher's own ``start()`` stored,
that ``start()`` is called again for the port
(:class:`~actorcluster.cluster.local_popen.PopenActor`, the coordinator's one child).
Past the master's intensity the cluster fails loudly (``cluster.master.lost`` at error
level, :class:`~actorcluster.errors.MasterLostError` from the cluster's calls): the
coordinator crashes, which stops every worker. Ports are taken from the coordinator's
:class:`~actorcluster.cluster.ports.PortPool`, one allocation at a time.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import ASK_TIMEOUT
from actorcluster._limits import CLUSTER_STOP_TIMEOUT as STOP_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.cluster.local_popen import PopenActor
from actorcluster.errors import ActorClusterError, MasterLostError, UsageError
from actorcluster.messages.supervision import ChildExited
from actorcluster.runtimes.supervised import (
    ProcessState,
    ProcessStatus,
    RestartPolicy,
    SupervisedProcess,
)
from actorcluster.supervisors import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    root_supervisor,
    supervisor_proxy,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from actorcluster.cluster.ports import PortPool
    from actorcluster.runtimes.handle import RuntimeHandle
    from actorcluster.runtimes.supervised import ProcessSpec

__all__ = ["MASTER", "ClusterCoordinator", "ClusterStatus", "Coordinator"]

log = get_logger(__name__)

MASTER = "master"
"""The master process's child id."""
DEFAULT_BACKOFF = Backoff(initial=0.2, maximum=5.0)
"""Delay between restarts of a worker unless the cluster is given another."""
_ids = itertools.count(1)


class RestartTimes:
    """The master's restart intensity: at most ``max_restarts`` in ``period`` seconds."""

    def __init__(self, max_restarts: int, period: float) -> None:
        self._max = max_restarts
        self._period = period
        self._times: collections.deque[float] = collections.deque()

    def record(self) -> bool:
        """Count a restart now; False if it would exceed the intensity."""
        now = time.monotonic()
        while self._times and now - self._times[0] > self._period:
            self._times.popleft()
        if len(self._times) >= self._max:
            return False
        self._times.append(now)
        return True


class ClusterStatus:
    """How a cluster's coordinator ended, readable from any thread."""

    def __init__(self) -> None:
        self._failure: Exception | None = None
        self._ended = threading.Event()

    @property
    def failure(self) -> Exception | None:
        """Why the cluster failed (master lost, workers given up on), or None."""
        return self._failure

    @property
    def ended(self) -> bool:
        """Whether the coordinator is gone."""
        return self._ended.is_set()

    def end(self, failure: Exception | None) -> None:
        """The coordinator stopped (``failure``: why it failed)."""
        if failure is not None and self._failure is None:
            self._failure = failure
        self._ended.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait until the coordinator is gone; False on timeout."""
        return self._ended.wait(timeout)


@dataclass(frozen=True, slots=True)
class _Exited:
    """Internal: a run of a supervised process ended by itself (told by the service)."""

    child_id: str
    process: SupervisedProcess


@dataclass(frozen=True, slots=True)
class _Failed:
    """Internal: the service gave up on a process (past its intensity)."""

    child_id: str
    process: SupervisedProcess


@dataclass(frozen=True, slots=True)
class _MasterRunning:
    """Internal: the master runs (again)."""

    process: SupervisedProcess


def _tell(ref: pykka.ActorRef[Any], message: object) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


class ClusterCoordinator(Supervisor):
    """The role logic of one cluster's processes (see the module docstring).

    Args:
        name: the cluster's name.
        pool: the cluster's ports.
        status: where its end is recorded.
        max_restarts, period, backoff: the restart intensity (the workers', the
            master's) and the workers' backoff.
    """

    def __init__(
        self,
        name: str,
        pool: PortPool,
        status: ClusterStatus,
        *,
        max_restarts: int,
        period: float,
        backoff: Backoff | None,
    ) -> None:
        super().__init__(
            name, Strategy.ONE_FOR_ONE, max_restarts=max_restarts, period=period, backoff=backoff
        )
        self._cluster = name
        self._pool = pool
        self._status = status
        self._max_restarts, self._period, self._backoff = max_restarts, period, backoff
        self._processes: dict[str, SupervisedProcess] = {}
        """The service's handles of the remote processes (the master's too)."""
        self._popen: ProcessState | None = None
        """The master's state when it is a launcher's local ``Popen`` (a child here)."""
        self._popen_spec: ChildSpec | None = None
        self._master_ready = False
        self._master_exited = False
        self._rest_pending = False
        self._deferred: SupervisedProcess | None = None
        """A worker given up on while its master was away (decided once it is back)."""
        self._restarts = RestartTimes(max_restarts, period)
        self._workers_reconnect = False
        self._stopping = False

    def __repr__(self) -> str:
        master = "up" if self._master_state() is not None else "none"
        count = len(self._processes)
        return f"<ClusterCoordinator {self._cluster} master={master} processes={count}>"

    def _master_state(self) -> ProcessState | None:
        master = self._processes.get(MASTER)
        return master.state if master is not None else self._popen

    # --- asked by the cluster (through a proxy) -------------------------------------

    def take_ports(self, candidates: Sequence[int], count: int) -> list[int]:
        """``count`` ports of ``candidates`` free everywhere (see :class:`PortPool`)."""
        return self._pool.take(candidates, count)

    def claim_port(self, port: int) -> int:
        """Exactly ``port`` (see :meth:`PortPool.claim`)."""
        return self._pool.claim(port)

    def release_ports(self, ports: Sequence[int]) -> None:
        """Give ports back."""
        self._pool.release(ports)

    def start_process(
        self, child_id: str, handle: RuntimeHandle, spec: ProcessSpec
    ) -> SupervisedProcess:
        """Start a process through the process service, in its runtime's subtree: the
        master (``child_id`` :data:`MASTER`: restarted at once, then its workers) or a
        worker (restarted with the backoff); both within the intensity, past which the
        cluster fails. Returns the service's handle.

        Raises:
            UsageError: a process with this id runs already, or the cluster failed.
            HostUnreachableError: the runtime's agent is not up.
        """
        if child_id in self._processes or (child_id == MASTER and self._popen is not None):
            raise UsageError(f"{self._cluster} runs a process {child_id!r} already")
        master = child_id == MASTER
        policy = RestartPolicy(
            restart=Restart.PERMANENT,
            max_restarts=self._max_restarts,
            period=self._period,
            backoff=None if master else self._backoff,
        )
        label = f"{self._cluster}-{child_id}"
        process = handle.start_process(spec, policy, label=label, wait_for_host=False)
        ref = self.actor_ref
        process.on_exit(lambda _info: _tell(ref, _Exited(child_id, process)))

        def changed(state: ProcessState) -> None:
            if state.status is ProcessStatus.FAILED:
                _tell(ref, _Failed(child_id, process))
            elif master and state.status is ProcessStatus.RUNNING:
                _tell(ref, _MasterRunning(process))

        process.subscribe(changed)
        self._processes[child_id] = process
        if master:
            self._master_ready = self._master_exited = self._rest_pending = False
        return process

    def adopt_popen(
        self,
        child_id: str,
        popen: Any,
        relaunch: Callable[[], Any],
        state: ProcessState,
    ) -> None:
        """Supervise a launcher's local ``Popen`` (already running): watched, and on
        exit restarted by ``relaunch`` (the launcher's ``start`` again, same port)."""
        if child_id in self._processes or self._popen is not None:
            raise UsageError(f"{self._cluster} runs a process {child_id!r} already")
        first = [popen]

        def start() -> pykka.ActorRef[Any]:
            return PopenActor.start(first.pop() if first else None, relaunch, state)

        child = ChildSpec(
            id=child_id, start=start, restart=Restart.TEMPORARY, shutdown_timeout=10.0
        )
        self.start_child(child)
        self._popen, self._popen_spec, self._master_ready = state, child, False

    def reserve_port(self, port: int) -> bool:
        """Reserve ``port`` for a launcher's start (see :meth:`PortPool.reserve`)."""
        return self._pool.reserve(port)

    def set_workers_reconnect(self, reconnect: bool) -> None:
        """Whether the workers reconnect to a restarted master by themselves (then they
        are left running), rather than being restarted after it (rest_for_one)."""
        self._workers_reconnect = reconnect

    def stop_all(self) -> list[ProcessState]:
        """Stop every process, workers first and the master last; nothing restarts
        them any more. Returns their states, to wait on."""
        self._stopping = True
        ids = [child_id for child_id in self._processes if child_id != MASTER]
        return self.stop_processes([*reversed(ids), MASTER])

    def master_ready(self) -> None:
        """The master passed its start (it listens and answered): from now on its
        exit restarts it (and its workers). Before, an exit is its launcher's start
        error.

        Raises:
            MasterLostError: it exited meanwhile (the cluster fails).
        """
        self._master_ready = True
        master = self._master_state()
        if self._popen is not None:
            exited = self._popen.exited_on_its_own
        else:
            exited = self._master_exited or (master is not None and bool(master.exit_codes))
        if master is not None and exited:
            error = self._master_lost(master)
            self.crash(error)  # raising in an ask fails only the ask
            raise error

    def stop_processes(self, child_ids: Sequence[str]) -> list[ProcessState]:
        """Stop these processes (all at once: asked for, not waited on); returns their
        states, to wait on until they are gone."""
        stopped: list[ProcessState] = []
        for child_id in child_ids:
            process = self._processes.pop(child_id, None)
            if process is not None:
                process.stop_nowait()
                stopped.append(process.state)
            elif child_id == MASTER and self._popen is not None:
                state, self._popen = self._popen, None
                with contextlib.suppress(UsageError):
                    self.terminate_child(child_id)
                    self.delete_child(child_id)
                state.stopped()
                stopped.append(state)
        return stopped

    # --- supervision ----------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """The service's notices; the local ``Popen`` master's supervision."""
        match message:
            case _Exited(child_id=child_id, process=process):
                self._on_exited(child_id, process)
                return None
            case _Failed(child_id=child_id, process=process):
                self._on_failed(child_id, process)
                return None
            case _MasterRunning(process=process):
                if self._processes.get(MASTER) is not process:
                    return None
                deferred, self._deferred = self._deferred, None
                if deferred is not None and not self._stopping:
                    self._worker_failed(deferred)  # the master is back: the worker's fate
                if self._rest_pending:
                    self._rest_pending = False
                    self._restart_workers()
                return None
        result = super().on_receive(message)
        popen = self._popen
        if (
            isinstance(message, ChildExited)
            and message.child_id == MASTER
            and popen is not None
            and popen.exited_on_its_own
            and self._master_ready
            and not self._stopping
        ):
            self._popen_exited(popen, message.reason or "normal")
        return result

    def _on_exited(self, child_id: str, process: SupervisedProcess) -> None:
        if self._stopping or self._processes.get(child_id) is not process:
            return
        if child_id != MASTER:
            return  # the service restarts it (with its backoff)
        if not self._master_ready:
            self._master_exited = True  # its launcher's start error
            return
        codes = process.exit_codes
        log.warning(
            "cluster.master.exited", cluster=self._cluster, code=codes[-1] if codes else None
        )
        if not self._workers_reconnect:
            self._rest_pending = True  # rest_for_one once it runs again

    def _on_failed(self, child_id: str, process: SupervisedProcess) -> None:
        if self._stopping or self._processes.get(child_id) is not process:
            return
        if child_id == MASTER:
            if self._master_ready:
                raise self._master_lost(process.state)
            return  # its launcher's start error
        master = self._processes.get(MASTER)
        if master is not None and master.state.status is not ProcessStatus.RUNNING:
            # Its master went first (its workers end with it): the master's fate decides.
            self._deferred = process
            return
        self._worker_failed(process)

    def _worker_failed(self, process: SupervisedProcess) -> None:
        error = process.error
        log.error("cluster.worker.given_up", cluster=self._cluster, process=process.key)
        raise error if error is not None else ActorClusterError(f"{process.key} failed")

    def _popen_exited(self, master: ProcessState, reason: str) -> None:
        """OTP's rest_for_one with the local ``Popen`` master first: restart it (its
        launcher again, same port) and then the workers after it, unless they
        reconnect by themselves; past the intensity the cluster fails."""
        spec = self._popen_spec
        if spec is None or not self._restarts.record():
            raise self._master_lost(master)
        codes = master.exit_codes
        code = codes[-1] if codes else None
        log.warning("cluster.master.exited", cluster=self._cluster, code=code, reason=reason)
        try:
            master.restarted_by_owner()  # temporary by its own type: the role restarts it
            self.start_child(spec)
        except Exception as error:
            log.error("cluster.master.restart_failed", cluster=self._cluster, error=repr(error))
            raise self._master_lost(master) from error
        log.info("cluster.master.restarted", cluster=self._cluster, restarts=master.restart_count)
        if not self._workers_reconnect:
            self._restart_workers()

    def _restart_workers(self) -> None:
        """rest_for_one: every worker killed and started again, after the master."""
        workers = [p for child_id, p in self._processes.items() if child_id != MASTER]
        for process in workers:
            process.restart()
        log.info("cluster.workers.restarted", cluster=self._cluster, count=len(workers))

    def _master_lost(self, master: ProcessState) -> MasterLostError:
        """The error failing the cluster: its master ended by itself (logged)."""
        codes = master.exit_codes
        code = codes[-1] if codes else None
        output = master.output.text(2000)
        how = "it was lost with its agent" if code is None else f"exit code {code}"
        reason = f"{how}; last output: {output!r}" if output else how
        log.error("cluster.master.lost", cluster=self._cluster, host=master.host, code=code)
        return MasterLostError(self._cluster, master.host, reason)

    def on_exit(self, error: BaseException | None) -> None:
        """Stop every process the service runs for the cluster (asked for, not waited
        on) and record how the cluster ended."""
        self._stopping = True
        for process in self._processes.values():
            process.stop_nowait()
        if self._popen is not None:
            self._popen.stopped()
        self._status.end(error if isinstance(error, Exception) else None)


class Coordinator:
    """The cluster's handle on its coordinator: start it, ask it, stop it.

    Args:
        pool: the cluster's ports.
        parent: the supervisor to run under (the group's; None: the root).
        max_restarts, period, backoff: the workers' restart intensity and backoff.
    """

    def __init__(
        self,
        pool: PortPool,
        parent: pykka.ActorRef[Any] | None,
        *,
        max_restarts: int = 10,
        period: float = 60.0,
        backoff: Backoff | None = DEFAULT_BACKOFF,
    ) -> None:
        self.name = f"cluster-{next(_ids)}"
        self.status = ClusterStatus()
        self._parent = parent if parent is not None else root_supervisor()
        spec = ChildSpec(
            id=self.name,
            start=lambda: ClusterCoordinator.start(
                self.name,
                pool,
                self.status,
                max_restarts=max_restarts,
                period=period,
                backoff=backoff,
            ),
            restart=Restart.TEMPORARY,  # a cluster that failed stays failed, loudly
            shutdown_timeout=60.0,
        )
        self.ref: pykka.ActorRef[Any] = (
            supervisor_proxy(self._parent).start_child(spec).get(timeout=ASK_TIMEOUT)
        )

    def __repr__(self) -> str:
        return f"<Coordinator {self.name} {'ended' if self.status.ended else 'running'}>"

    def ask(self, method: str, *args: Any) -> Any:
        """Call the coordinator's ``method`` and wait for its answer.

        Raises:
            whatever the method raised; the cluster's failure (a
            :class:`~actorcluster.errors.MasterLostError`, say) once it failed.
        """
        try:
            return getattr(self.ref.proxy(), method)(*args).get(timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            failure = self.status.failure
            if failure is not None:
                raise failure from None
            raise UsageError(f"{self.name} was cleaned up; create a new cluster") from None

    def stop_processes(self, child_ids: Sequence[str], timeout: float = STOP_TIMEOUT) -> None:
        """Stop processes and wait (bounded) until each is gone from its host."""
        if not child_ids:
            return
        try:
            states: list[ProcessState] = self.ask("stop_processes", list(child_ids))
        except ActorClusterError:
            return  # the coordinator is gone: it stopped them on its way out
        for state in states:
            if not state.wait_gone(timeout):
                log.warning("cluster.process.stop_timeout", cluster=self.name, process=state.name)

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every process (workers first, then the master; none is restarted any
        more) and wait (bounded) until each is gone from its host."""
        try:
            states: list[ProcessState] = self.ask("stop_all")
        except ActorClusterError:
            return  # the coordinator is gone: it stopped them on its way out
        for state in states:
            if not state.wait_gone(timeout):
                log.warning("cluster.process.stop_timeout", cluster=self.name, process=state.name)

    def stop(self) -> None:
        """Stop the coordinator (and whatever it still supervises); idempotent."""
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError, pykka.Timeout):
            supervisor_proxy(self._parent).terminate_child(self.name).get(timeout=ASK_TIMEOUT)
        self.status.end(None)
