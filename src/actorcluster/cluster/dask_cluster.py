"""lazycluster's ``dask_cluster`` module on today's dask.distributed.

The scheduler runs here (:class:`LocalMasterLauncher`, as lazycluster) or on a runtime
(``DaskCluster(group, scheduler_host="host-1")``); workers run on the group round robin
(:class:`RoundRobinLauncher`), each a supervised ``python -m distributed.cli.dask_worker``
without a nanny (the cluster's coordinator restarts it). Readiness is a handshake: the
scheduler counts as started when a ``distributed.Client`` talks to it, the workers when
the scheduler lists them. Nothing is installed on a host unless asked
(``install_dask=True``): a host whose interpreter lacks ``distributed``, or has another
version than this client, is a :class:`~actorcluster.errors.MissingDependencyError`
naming the host, the interpreter and the command that installs it (checked before
anything starts; see :mod:`actorcluster.cluster.dask_deps`). :meth:`DaskCluster.get_client`
returns the default client, as lazycluster's did: ``dask.compute`` and ``.compute()``
run on the cluster.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.cluster.dask_client import connect
from actorcluster.cluster.dask_deps import PIP_INSTALL_COMMAND, check_dask, python_candidates
from actorcluster.cluster.launchers import MasterLauncher, WorkerLauncher
from actorcluster.cluster.runtime_cluster import MasterWorkerCluster
from actorcluster.cluster.security import ClusterTLS, http_address
from actorcluster.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from distributed import Client

    from actorcluster.cluster.context import WorkerSlot
    from actorcluster.groups import RuntimeGroup
    from actorcluster.runtimes import Runtime
    from actorcluster.supervisors import Backoff

__all__ = ["DaskCluster", "LocalMasterLauncher", "RoundRobinLauncher"]

log = get_logger(__name__)

_HINT = (
    "install it there (pip install 'dask[distributed]', the same version as here), or "
    "pass python= naming an interpreter that has it"
)
_WORKERS_TIMEOUT = 120.0


def cli_options(options: Mapping[str, Any]) -> list[str]:
    """``{"nthreads": 2, "memory_limit": "2GB", "dashboard": False}`` as CLI flags
    (``--nthreads 2 --memory-limit 2GB --no-dashboard``)."""
    flags: list[str] = []
    for key, value in options.items():
        name = str(key).replace("_", "-")
        if value is True:
            flags.append(f"--{name}")
        elif value is False:
            flags.append(f"--no-{name}")
        elif value is not None:
            flags += [f"--{name}", str(value)]
    return flags


class LocalMasterLauncher(MasterLauncher):
    """Starts the dask scheduler here (or, with ``host``, on that runtime), and counts
    it as started once a client talks to it.

    Args:
        runtime_group: the group.
        host: None (here) or a host of the group.
        options: extra ``dask scheduler`` options (``{"idle_timeout": "1h"}``).
        python: the interpreter to run it with; None: this one here, else the host's
            ``python3.X``/``python3``.
        install: install this client's ``distributed`` on its host if it lacks it.
    """

    def __init__(
        self,
        runtime_group: RuntimeGroup,
        host: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        python: str | None = None,
        install: bool = False,
    ) -> None:
        super().__init__(runtime_group, host)
        self._options = dict(options or {})
        self._python = python
        self._install = install
        self.dashboard_port: int | None = None
        """The dashboard's port where the scheduler runs (None: no dashboard)."""
        self.tls: ClusterTLS | None = None
        """The cluster's TLS credentials (None: plain TCP, open to whoever reaches it)."""

    def _interpreter(self) -> str:
        if self._host is None:
            if importlib.util.find_spec("distributed") is None:
                raise MissingDependencyError("localhost", sys.executable, "distributed", _HINT)
            return shlex.quote(self._python or sys.executable)
        runtime = self.cluster_context().runtime(self._host)
        return check_dask({runtime.host: runtime}, self._python, install=self._install)[
            runtime.host
        ]

    def get_launch_command(self, port: int, bind_address: str) -> str:
        """``python -m distributed.cli.dask_scheduler`` on ``bind_address:port``."""
        context = self.cluster_context()
        options: dict[str, Any] = {"host": bind_address, "port": port}
        if importlib.util.find_spec("bokeh") is not None and self._host is None:
            self.dashboard_port = context.take_ports(_dashboard_ports(), 1)[0]
            options["dashboard_address"] = f"{bind_address}:{self.dashboard_port}"
        else:
            options["dashboard"] = False
            options["dashboard_address"] = http_address(bind_address)
        if self.tls is not None:
            options["protocol"] = self.tls.scheme
            options.update(self.tls.flags(context.runtime(self._host)))
        options.update(self._options)
        flags = " ".join(shlex.quote(flag) for flag in cli_options(options))
        runtime = self.cluster_context().runtime(self._host)
        placing = self.tls.placing(runtime) if self.tls else ""
        return f"{placing}exec {self._interpreter()} -m distributed.cli.dask_scheduler {flags}"

    def get_launch_env(self, runtime: Runtime) -> Mapping[str, str] | None:
        """The cluster's certificate and key, for the command to write (secure clusters)."""
        return self.tls.env() if self.tls else None

    def check_ready(self, address: str, port: int, timeout: float) -> None:
        """A client talks to the scheduler (an identity round trip)."""
        tls = self.tls
        address = f"{tls.scheme if tls else 'tcp'}://{address}:{port}"
        security = tls.client_security() if tls else None
        with connect(address, timeout, set_as_default=False, security=security) as client:
            client.scheduler_info()


def _dashboard_ports() -> list[int]:
    return list(range(8787, 8887))


class RoundRobinLauncher(WorkerLauncher):
    """Starts dask workers on the group's runtimes round robin, each a supervised
    ``distributed.cli.dask_worker`` without a nanny.

    Args:
        runtime_group: the group.
        options: ``dask worker`` options (``{"nthreads": 1, "memory_limit": "2GB"}``).
        python: the interpreter on the hosts; None: ``python3.X`` (this X), else ``python3``.
        install: install this client's ``distributed`` on hosts that lack it (or have
            another version) before starting workers there.
    """

    workers_talk = True
    # workers_reconnect stays False: today's dask worker (no nanny) closes when it loses
    # its scheduler, so after a scheduler restart the workers are restarted after it.

    @property
    def starts_with_master(self) -> bool:  # type: ignore[override]
        """Launched while the scheduler starts up, except over TLS: a worker whose TLS
        handshake meets a tunnel with nothing behind it yet fails for good (dask
        retries refused connections, not failed handshakes)."""
        return self.tls is None

    def __init__(
        self,
        runtime_group: RuntimeGroup,
        *,
        options: Mapping[str, Any] | None = None,
        python: str | None = None,
        install: bool = False,
    ) -> None:
        super().__init__(runtime_group)
        self._options = dict(options or {})
        self._python = python
        self._install = install
        self._interpreters: dict[str, str] = {}
        self.tls: ClusterTLS | None = None
        """The cluster's TLS credentials (None: plain TCP, open to whoever reaches it)."""

    def start(
        self, worker_count: int, master_port: int, ports: list[int], debug: bool = False
    ) -> list[int]:
        """Check every host has dask (at once), then launch the workers (see
        :meth:`WorkerLauncher.start`).

        Raises:
            MissingDependencyError: a host's interpreter lacks ``distributed``.
            NoPortsLeftError: not enough free ports for all workers.
        """
        hosts = set(self.place(worker_count)) - set(self._interpreters)
        if hosts:
            self._interpreters.update(
                check_dask(
                    self._group.get_runtimes(list(hosts)), self._python, install=self._install
                )
            )
        return super().start(worker_count, master_port, ports, debug)

    def get_launch_command(self, slot: WorkerSlot) -> str:
        """``python -m distributed.cli.dask_worker`` for ``slot``."""
        scheme = self.tls.scheme if self.tls else "tcp"
        options: dict[str, Any] = {
            "name": f"{self.cluster_context().name}-worker-{slot.index}",
            "nanny": False,
            "dashboard": False,
            "dashboard_address": http_address(slot.listen_address),
            "listen_address": f"{scheme}://{slot.listen_address}:{slot.port}",
            "contact_address": f"{scheme}://{slot.contact_address}:{slot.contact_port}",
            "local_directory": f"{slot.working_dir}/dask-worker-space",
            "death_timeout": 60,
        }
        if self.tls is not None:
            options.update(self.tls.flags(self.cluster_context().runtime(slot.host)))
        options.update(self._options)
        flags = " ".join(shlex.quote(flag) for flag in cli_options(options))
        scheduler = f"{scheme}://{slot.master_address}:{slot.master_port}"
        python = self._interpreters.get(slot.host) or python_candidates(self._python).split()[-1]
        runtime = self.cluster_context().runtime(slot.host)
        placing = self.tls.placing(runtime) if self.tls else ""
        return (
            f"{placing}exec {python} -m distributed.cli.dask_worker "
            f"{shlex.quote(scheduler)} {flags}"
        )

    def get_launch_env(self, runtime: Runtime) -> Mapping[str, str] | None:
        """The cluster's certificate and key, for the command to write (secure clusters)."""
        return self.tls.env() if self.tls else None


class DaskCluster(MasterWorkerCluster):
    """A dask cluster on a group: the scheduler here (or on ``scheduler_host``), the
    workers on the group round robin (one per runtime by default).

    Args:
        runtime_group: the runtimes.
        ports: where the cluster takes its ports from.
        master_launcher: default :class:`LocalMasterLauncher`.
        worker_launcher: default :class:`RoundRobinLauncher`.
        tunnels: through this machine (True, lazycluster's way) or direct (False:
            faster, when the hosts reach each other and this machine).
        scheduler_host: run the scheduler on this host of the group instead of here.
        worker_options: ``dask worker`` options (``nthreads``, ``memory_limit``, ...).
        scheduler_options: ``dask scheduler`` options.
        python: the interpreter on the hosts (default ``python3.X``, else ``python3``).
        install_dask: install this client's ``distributed`` (``python -m pip install
            'dask[distributed]==<version here>'``) on hosts that lack it or have another
            version; default False: such a host is a MissingDependencyError naming the
            command to run there.
        max_restarts: at most this many worker restarts in ``period`` seconds (the
            workers' restart intensity), else the cluster fails.
        period: the seconds ``max_restarts`` counts over.
        backoff: the delay between restarts of a worker.
        secure: TLS with temporary certificates between the client, the scheduler and
            the workers (the default launchers'), so only this client can use the
            cluster; False: plain TCP, open to anyone who reaches its ports.
    """

    DEFAULT_MASTER_PORT = 8786
    """dask's scheduler port."""
    PIP_INSTALL_COMMAND = PIP_INSTALL_COMMAND
    """lazycluster's install command (``install_dask=True`` pins this client's version)."""

    def __init__(
        self,
        runtime_group: RuntimeGroup,
        ports: list[int] | None = None,
        master_launcher: MasterLauncher | None = None,
        worker_launcher: WorkerLauncher | None = None,
        *,
        tunnels: bool = True,
        scheduler_host: str | None = None,
        worker_options: Mapping[str, Any] | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        python: str | None = None,
        max_restarts: int = 10,
        period: float = 60.0,
        backoff: Backoff | None = None,
        install_dask: bool = False,
        secure: bool = True,
    ) -> None:
        extra: dict[str, Any] = {"backoff": backoff} if backoff is not None else {}
        super().__init__(
            runtime_group,
            ports,
            tunnels=tunnels,
            max_restarts=max_restarts,
            period=period,
            **extra,
        )
        self._set_launchers(
            master_launcher
            or LocalMasterLauncher(
                runtime_group,
                scheduler_host,
                options=scheduler_options,
                python=python,
                install=install_dask,
            ),
            worker_launcher
            or RoundRobinLauncher(
                runtime_group, options=worker_options, python=python, install=install_dask
            ),
        )
        self._expected = 0
        self._tls = ClusterTLS() if secure else None
        for launcher in (self._master_launcher, self._worker_launcher):
            if isinstance(launcher, (LocalMasterLauncher, RoundRobinLauncher)):
                launcher.tls = self._tls

    @property
    def scheduler_address(self) -> str | None:
        """The scheduler's address as reached from here (``tcp://host:port``)."""
        master = self._context.master
        scheme = self._tls.scheme if self._tls else "tcp"
        return None if master is None else f"{scheme}://{master.here[0]}:{master.here[1]}"

    @property
    def tls_files(self) -> tuple[str, str] | None:
        """The cluster's certificate and key here, for a client of another process
        (``Security(tls_ca_file=cert, tls_client_cert=cert, tls_client_key=key)``);
        None when the cluster is not secure."""
        return self._tls.local_files() if self._tls is not None else None

    @property
    def dashboard_link(self) -> str | None:
        """The scheduler's dashboard here, if it has one (needs bokeh)."""
        launcher = self._master_launcher
        port = getattr(launcher, "dashboard_port", None)
        master = self._context.master
        if port is None or master is None:
            return None
        return f"http://{master.here[0]}:{port}/status"

    def start_master(
        self, master_port: int | None = None, timeout: int = 30, debug: bool = False
    ) -> None:
        """Start the scheduler; ready when a client talks to it (see
        :meth:`MasterWorkerCluster.start_master`; the default ``timeout`` allows for
        dask's start-up)."""
        super().start_master(master_port, timeout, debug)

    def start_workers(self, count: int | None = None, debug: bool = False) -> None:
        """Start the workers and wait until the scheduler lists them all.

        Raises:
            NoPortsLeftError: not enough free ports.
            MissingDependencyError: a host lacks dask.
            TimeoutError: they did not all register in time.
        """
        super().start_workers(count, debug)

    def _workers_launched(self, count: int) -> None:
        self._expected += count
        self.wait_for_workers(self._expected)

    def wait_for_workers(self, count: int, timeout: float = _WORKERS_TIMEOUT) -> None:
        """Wait until the scheduler lists at least ``count`` workers.

        Raises:
            TimeoutError: it did not in time.
            MasterLostError: the scheduler exited meanwhile.
        """
        self.check()
        with self._client(int(max(2, timeout)), set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)
        log.info("cluster.workers.ready", cluster=self.name, count=count)

    def get_client(self, timeout: int = 2) -> Client:
        """A connected ``distributed.Client``, the default one from now on (as
        lazycluster's): ``dask.compute`` and ``.compute()`` run on this cluster. Close
        it when done.

        Raises:
            TimeoutError: no connection within ``timeout`` seconds.
            MasterLostError: the scheduler exited.
            UsageError: the scheduler was not started.
        """
        return self._client(timeout, set_as_default=True)

    def _client(self, timeout: int, *, set_as_default: bool) -> Client:
        self.check()
        address = self.scheduler_address
        launcher = self._master_launcher
        tls = launcher.tls if isinstance(launcher, LocalMasterLauncher) else None
        if address is None and self.master_port is not None:  # a launcher's own start()
            address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{self.master_port}"
        if address is None:
            raise UsageError("start the cluster first (start() or start_master())")
        security = tls.client_security() if tls else None
        return connect(address, timeout, set_as_default=set_as_default, security=security)

    def cleanup(self) -> None:
        """Stop the cluster (see :meth:`MasterWorkerCluster.cleanup`), then remove the
        local copy of its TLS credentials."""
        super().cleanup()
        if self._tls is not None:
            self._tls.close()
