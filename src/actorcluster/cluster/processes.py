"""A cluster's ports and processes, through its coordinator (:class:`ClusterProcesses`,
a base of the cluster's context): the processes on hosts run on the process service
(:mod:`actorcluster.runtimes.supervised`), the coordinator keeps their roles."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from actorcluster.cluster.coordinator import MASTER, Coordinator
from actorcluster.runtimes import Runtime
from actorcluster.runtimes.supervised import ProcessSpec, ProcessState, SupervisedProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pykka

    from actorcluster.cluster.ports import PortPool
    from actorcluster.supervisors import Backoff

__all__ = ["ClusterProcesses"]

_BEGIN_TIMEOUT = 30.0
"""Seconds :meth:`ClusterProcesses.start_process` waits for the command to be sent."""


class ClusterProcesses:
    """The cluster's coordinator and what is asked of it.

    Args:
        pool: the cluster's ports.
        parent: the supervisor the coordinator runs under (None: the root).
        max_restarts, period, backoff: the restart intensity and the workers' backoff.
    """

    def __init__(
        self,
        pool: PortPool,
        parent: pykka.ActorRef[Any] | None,
        max_restarts: int,
        period: float,
        backoff: Backoff | None,
    ) -> None:
        self.coordinator = Coordinator(
            pool, parent, max_restarts=max_restarts, period=period, backoff=backoff
        )
        self.name = self.coordinator.name
        self._worker_ids = itertools.count()

    # --- ports ----------------------------------------------------------------------

    def take_ports(self, candidates: Sequence[int], count: int) -> list[int]:
        """``count`` ports of ``candidates``, free everywhere, the cluster's from now on."""
        ports: list[int] = self.coordinator.ask("take_ports", list(candidates), count)
        return ports

    def release_ports(self, ports: Sequence[int]) -> None:
        """Give ``ports`` back: no longer the cluster's."""
        self.coordinator.ask("release_ports", list(ports))

    def claim_port(self, port: int) -> int:
        """Exactly ``port`` (PortInUseError if it is taken anywhere)."""
        claimed: int = self.coordinator.ask("claim_port", port)
        return claimed

    # --- processes ------------------------------------------------------------------

    def start_process(
        self,
        child_id: str,
        runtime: Runtime,
        command: str,
        *,
        debug: bool = False,
        env: dict[str, str] | None = None,
        name: str | None = None,
    ) -> tuple[SupervisedProcess, ProcessState]:
        """Start a process under the coordinator (``child_id`` :data:`MASTER` or a
        worker's); returns its handle and state."""
        name = f"{self.name}-{name or child_id}"
        spec = ProcessSpec(
            name=name,
            command=command,
            env=dict(runtime.env_variables) if env is None else env,
            echo=debug,
        )
        process: SupervisedProcess = self.coordinator.ask(
            "start_process", child_id, runtime.handle, spec
        )
        state = process.state
        # Its command sent before this returns, as a start of the cluster's expects (a
        # cleanup right after the start stops what started): bounded, never an error.
        state.wait(lambda: state.starts > 0 or state.finished, _BEGIN_TIMEOUT)
        handle = SupervisedProcess(
            process.key, state, lambda: self.coordinator.stop_processes([child_id])
        )
        return handle, state

    def adopt_popen(
        self, popen: Any, relaunch: Callable[[], Any], host: str = Runtime.LOCALHOST
    ) -> ProcessState:
        """Make a launcher's local ``Popen`` the cluster's master: watched, restarted by
        ``relaunch`` (which returns the new ``Popen``); returns its state."""
        state = ProcessState(host, f"{self.name}-{MASTER}")
        self.coordinator.ask("adopt_popen", MASTER, popen, relaunch, state)
        return state

    def reserve_port(self, port: int) -> bool:
        """Reserve ``port`` for a launcher's start (see :meth:`PortPool.reserve`)."""
        reserved: bool = self.coordinator.ask("reserve_port", port)
        return reserved

    def stop_all_processes(self) -> None:
        """Stop every process of the cluster (workers first, the master last) and wait
        (bounded) until they are gone: nothing restarts them any more."""
        self.coordinator.stop_all()

    def next_worker_id(self) -> str:
        """A fresh worker child id."""
        return f"worker-{next(self._worker_ids)}"

    def master_ready(self) -> None:
        """Tell the coordinator the master is up: from now on its exit fails the
        cluster.

        Raises:
            MasterLostError: it exited meanwhile.
        """
        self.coordinator.ask("master_ready")
