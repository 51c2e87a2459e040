"""lazycluster's ``runtime_cluster`` module: :class:`RuntimeCluster`,
:class:`MasterWorkerCluster` and the launcher strategies, on a cluster coordinator.

Each cluster has a :class:`~actorcluster.cluster.coordinator.ClusterCoordinator` (a
supervisor under the group's) that owns its ports and supervises its processes, also
those a launcher's own ``start()`` starts (:mod:`actorcluster.cluster.adoption`): a
worker that exits is restarted, a master that exits is restarted on its port and its
workers after it; past the restart intensity the cluster fails and stops its workers
(its calls then raise :class:`~actorcluster.errors.MasterLostError`).
:meth:`MasterWorkerCluster.cleanup` (and leaving the ``with`` block) stops the
workers, then the master, then the tunnels, then the group, in that order.
"""

from __future__ import annotations

import atexit
import weakref
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.cluster.adoption import adopt_master, adopt_workers
from actorcluster.cluster.context import ClusterContext
from actorcluster.cluster.coordinator import DEFAULT_BACKOFF
from actorcluster.cluster.launchers import MasterLauncher, WorkerLauncher
from actorcluster.cluster.starting import MasterStart
from actorcluster.errors import LazyclusterError, UsageError
from actorcluster.observe import bus as observe
from actorcluster.observe import events as observed
from actorcluster.runtimes.supervised import SupervisedProcess

if TYPE_CHECKING:
    from actorcluster.groups import RuntimeGroup
    from actorcluster.supervisors import Backoff

__all__ = ["MasterLauncher", "MasterWorkerCluster", "RuntimeCluster", "WorkerLauncher"]

log = get_logger(__name__)


class RuntimeCluster:
    """Abstract cluster class: every cluster derives from it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


class MasterWorkerCluster(RuntimeCluster):
    """A cluster with a master-worker architecture; subclass it (or give it launchers).

    Args:
        runtime_group: the runtimes the cluster's entities may run on.
        ports: the ports the cluster takes its ports from; default
            ``range(DEFAULT_PORT_RANGE_START, DEFAULT_PORT_RANGE_END)``.
        master_launcher: the strategy that starts the master.
        worker_launcher: the strategy that starts the workers.
        tunnels: wire the entities through this machine (lazycluster's way: hosts
            need not reach each other); False: directly (faster; they must).
        max_restarts: at most this many worker restarts (and, counted apart, master
            restarts) in ``period`` seconds, else the cluster fails.
        period: the seconds ``max_restarts`` counts over.
        backoff: the delay between restarts of a worker.
    """

    DEFAULT_MASTER_PORT = 60000
    """The master's port when none is given and it is free."""
    DEFAULT_PORT_RANGE_START = 60001
    """First port of the default port list."""
    DEFAULT_PORT_RANGE_END = 60200
    """End (exclusive) of the default port list."""

    def __init__(
        self,
        runtime_group: RuntimeGroup,
        ports: list[int] | None = None,
        master_launcher: MasterLauncher | None = None,
        worker_launcher: WorkerLauncher | None = None,
        *,
        tunnels: bool = True,
        max_restarts: int = 10,
        period: float = 60.0,
        backoff: Backoff | None = DEFAULT_BACKOFF,
    ) -> None:
        self._group = runtime_group
        self._ports = (
            list(ports)
            if ports
            else list(range(self.DEFAULT_PORT_RANGE_START, self.DEFAULT_PORT_RANGE_END))
        )
        self._context = ClusterContext(
            runtime_group,
            tunnels=tunnels,
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
        )
        self._context.ports = self._ports
        self._master_launcher: MasterLauncher | None = None
        self._worker_launcher: WorkerLauncher | None = None
        self._set_launchers(master_launcher, worker_launcher)
        self._cleaned = False
        atexit.register(_cleanup_at_exit, weakref.ref(self))
        log.debug("cluster.created", cluster=self._context.name, hosts=runtime_group.hosts)

    def _set_launchers(
        self, master_launcher: MasterLauncher | None, worker_launcher: WorkerLauncher | None
    ) -> None:
        self._master_launcher = master_launcher
        self._worker_launcher = worker_launcher
        self._attach_launchers()

    def _attach_launchers(self) -> None:
        """Make the launchers part of this cluster. Called again when it starts: a
        subclass may assign ``_master_launcher``/``_worker_launcher`` after
        ``super().__init__()`` (lazycluster's ``DaskCluster`` does)."""
        for launcher in (self._master_launcher, self._worker_launcher):
            if launcher is not None and launcher._context is not self._context:
                launcher.attach(self._context)

    def __str__(self) -> str:
        return f"{type(self).__name__} with {self._group}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._context.name} master_port={self.master_port}>"

    def _repr_html_(self) -> str:
        """A notebook's view: state, hosts, master, and each worker's status."""
        from actorcluster.cluster.reprs import cluster_html

        return cluster_html(self)

    def __enter__(self) -> MasterWorkerCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    @property
    def name(self) -> str:
        """The cluster's name (its coordinator's, in logs and the tree)."""
        return self._context.name

    @property
    def master_port(self) -> int | None:
        """The port where the master instance was started; None if not yet started."""
        return self._master_launcher.port if self._master_launcher else None

    @property
    def runtime_group(self) -> RuntimeGroup:
        """The group."""
        return self._group

    def events(self, maxsize: int = observe.DEFAULT_BUFFER) -> observe.Subscription:
        """A subscription to the events of the cluster and of its group's runtimes."""
        return observe.subscribe(hosts=self._group.hosts, cluster=self.name, maxsize=maxsize)

    @property
    def failure(self) -> Exception | None:
        """Why the cluster failed (its master exited, or its workers kept failing);
        None while it is well."""
        return self._context.coordinator.status.failure

    def check(self) -> None:
        """Raise the cluster's failure, if it failed.

        Raises:
            MasterLostError: the master exited (the workers were stopped).
            SupervisorGaveUpError: workers kept exiting past the restart intensity.
        """
        failure = self.failure
        if failure is not None:
            raise failure

    def wait(self, timeout: float | None = None) -> None:
        """Block until the cluster fails or is cleaned up (a service's main loop).

        Raises:
            MasterLostError, SupervisorGaveUpError: how it failed.
        """
        self._context.coordinator.status.wait(timeout)
        self.check()

    def start(
        self, worker_count: int | None = None, master_port: int | None = None, debug: bool = False
    ) -> None:
        """Start the master, then the workers (:meth:`start_master`, :meth:`start_workers`).

        Workers that wait for the master themselves (their launcher's
        ``starts_with_master``, as dask's) are launched as soon as the master's address
        is known, so that both start up at once.
        """
        log.info("cluster.starting", cluster=self.name)
        observe.emit(observed.ClusterStarting, cluster=self.name)
        launcher = self._worker_launcher
        if launcher is not None and launcher.starts_with_master and self.master_port is None:
            self._start_together(launcher, worker_count, master_port, debug)
            return
        self.start_master(master_port, debug=debug)
        self.start_workers(worker_count, debug=debug)

    def _start_together(
        self,
        launcher: WorkerLauncher,
        worker_count: int | None,
        master_port: int | None,
        debug: bool,
    ) -> None:
        """:meth:`start` with the workers launched while the master starts up."""
        self.check()
        master = self._master_launcher
        starting = MasterStart(
            self._context,
            lambda: self.start_master(master_port, debug=debug),
            master.cleanup if master else lambda: None,
            name=f"{self.name}-master",
        )
        count = worker_count or self._group.runtime_count
        launch_failure: Exception | None = None
        try:
            endpoint = starting.endpoint()
            if endpoint is not None:
                try:
                    self._launch_workers(launcher, count, endpoint.port, debug)
                except Exception as error:  # raised once the master's start is over
                    launch_failure = error
            starting.join()
        except BaseException:  # Ctrl-C: nothing of this start stays up
            starting.abandon()
            launcher.discard()
            raise
        if starting.failure is not None:
            launcher.discard()
            raise starting.failure
        if endpoint is None or self._context.master is not endpoint:
            # Another program took the port the workers were told of, and the master came
            # up at the next one: the workers start again, told of that one.
            launcher.discard()
            self._launch_workers(launcher, count, self.master_port, debug)
        elif launch_failure is not None:
            raise launch_failure
        self._workers_launched(count)

    def start_master(
        self, master_port: int | None = None, timeout: int = 3, debug: bool = False
    ) -> None:
        """Start the master instance and wait until it is ready.

        Args:
            master_port: its port; default :attr:`DEFAULT_MASTER_PORT` if free, else
                the first free one of the cluster's ports.
            timeout: seconds until :class:`~actorcluster.errors.MasterStartError`.
            debug: print its output here as it comes.

        Raises:
            PortInUseError: the port given is not free in the group (or here).
            NoPortsLeftError: no port of the cluster's list is free.
            MasterStartError: it exited, or was not ready after ``timeout``.
        """
        launcher = self._master_launcher
        if not launcher:
            raise LazyclusterError("Master Launcher does not exist.")
        self._attach_launchers()
        self.check()
        if master_port:
            adopt_master(self._context, launcher, master_port, timeout, debug)
        elif type(launcher).start is not MasterLauncher.start and self._context.reserve_port(
            self.DEFAULT_MASTER_PORT
        ):  # lazycluster hands its own start() the default port as an int when it is free
            adopt_master(self._context, launcher, self.DEFAULT_MASTER_PORT, timeout, debug)
        else:  # the default port if free, else the first free one of the list
            default = self.DEFAULT_MASTER_PORT
            ports = [default, *(port for port in self._ports if port != default)]
            left = adopt_master(self._context, launcher, ports, timeout, debug)
            self._ports = [port for port in left if port != default]
            self._context.ports = self._ports
        if launcher.port is None:
            raise LazyclusterError(f"{type(launcher).__name__}.start() did not set self._port")
        self._context.master_ready()  # from now on its exit restarts it
        log.info("cluster.master.ready", cluster=self.name, port=self.master_port)
        observe.emit(observed.ClusterMasterReady, cluster=self.name, port=self.master_port)

    def start_workers(self, count: int | None = None, debug: bool = False) -> None:
        """Start the worker instances (default: one per runtime of the group).

        Raises:
            NoPortsLeftError: not enough free ports left for them.
            UsageError: the master was not started.
        """
        if not self._worker_launcher:
            raise LazyclusterError("Worker launcher does not exist")
        self.check()
        if self.master_port is None:
            raise UsageError("start the master first (start() or start_master())")
        count = count or self._group.runtime_count
        self._launch_workers(self._worker_launcher, count, self.master_port, debug)
        self._workers_launched(count)

    def _launch_workers(
        self, launcher: WorkerLauncher, count: int, master_port: int | None, debug: bool
    ) -> None:
        assert master_port is not None
        self._attach_launchers()
        self._ports = adopt_workers(
            self._context, launcher, count, master_port, self._ports, debug=debug
        )
        self._context.ports = self._ports

    def _workers_launched(self, count: int) -> None:
        """``count`` workers were launched (a subclass waits for them here)."""

    def print_log(self) -> None:
        """Print the execution log: the group's tasks, then each cluster process's
        latest output."""
        self.runtime_group.print_log()
        master = self._master_launcher.process if self._master_launcher else None
        workers = self._worker_launcher.processes if self._worker_launcher else []
        supervised = [master] if isinstance(master, SupervisedProcess) else []
        for process in [*supervised, *workers]:
            print(f"--- {process.name} ({process.status}, {process.restart_count} restarts) ---")
            print(process.output(), end="")

    def cleanup(self) -> None:
        """Release all resources: the workers, then the master, then the tunnels and
        the coordinator, then the group. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        log.info("cluster.stopping", cluster=self.name)
        self._context.stop_all_processes()  # workers, then the master; none restarted
        if self._worker_launcher:
            self._worker_launcher.cleanup()
        if self._master_launcher:
            self._master_launcher.cleanup()
        self._context.close()
        self._group.cleanup()
        log.info("cluster.stopped", cluster=self.name)
        observe.emit(observed.ClusterStopped, cluster=self.name)


def _cleanup_at_exit(ref: weakref.ref[MasterWorkerCluster]) -> None:
    cluster = ref()
    if cluster is not None:
        cluster.cleanup()
