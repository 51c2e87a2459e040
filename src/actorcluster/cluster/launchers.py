"""The launcher strategies of lazycluster's ``runtime_cluster`` module.

A cluster starts its master with a :class:`MasterLauncher` and its workers with a
:class:`WorkerLauncher`; users subclass them and pass them in. Overriding ``start``
keeps lazycluster's contract exactly (``self._group``, ``self.log``, ``self._port``,
``self._process``, ``self._ports_per_host``, :meth:`WorkerLauncher.setup_worker_ssh_tunnels`),
and what it starts is the cluster's (see :mod:`actorcluster.cluster.adoption`). The
simpler way is to give only the commands (:meth:`MasterLauncher.get_launch_command`,
:meth:`WorkerLauncher.get_launch_command`): the default ``start`` then takes the ports
from the cluster's pool, runs each command as a supervised process under the cluster's
coordinator (a worker that exits is restarted; a master too, and its workers after
it), waits until the master listens, and wires the tunnels.
"""

from __future__ import annotations

import logging
import subprocess
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.cluster.context import PORT_TAKEN
from actorcluster.cluster.coordinator import MASTER
from actorcluster.cluster.exposure import expose_to_group
from actorcluster.cluster.local_popen import stop_popen
from actorcluster.errors import MasterStartError, NoPortsLeftError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actorcluster.cluster.context import ClusterContext, Tunnel, WorkerSlot
    from actorcluster.groups import RuntimeGroup
    from actorcluster.runtimes import Runtime
    from actorcluster.runtimes.supervised import SupervisedProcess

__all__ = ["MasterLauncher", "WorkerLauncher"]

log = get_logger(__name__)

_PORT_ATTEMPTS = 3
"""Ports of a list tried for a master whose port another program took meanwhile."""


def _port_was_taken(error: MasterStartError) -> bool:
    """Whether the master failed because its port was taken (it said so as it exited)."""
    text = str(error)
    return any(sign in text for sign in ("Address already in use", "EADDRINUSE", PORT_TAKEN))


class _Launcher:
    """What both launchers share: the cluster they are part of, and ``log``."""

    _context: ClusterContext | None = None

    def _init_log(self) -> None:
        self.log = logging.getLogger(f"actorcluster.cluster.{type(self).__name__}")
        """A standard ``logging`` logger, as lazycluster's launchers have (``self.log``)."""

    def attach(self, context: ClusterContext) -> None:
        """Join a cluster (its coordinator, ports and tunnels); the cluster calls it."""
        self._context = context

    def cluster_context(self) -> ClusterContext:
        """The cluster's shared machinery.

        Raises:
            UsageError: the launcher was not given to a cluster.
        """
        if self._context is None:
            raise UsageError(f"{type(self).__name__} is not part of a cluster: pass it to one")
        return self._context

    def get_launch_env(self, runtime: Runtime) -> Mapping[str, str] | None:
        """Environment variables the launch command needs on ``runtime``, on top of the
        runtime's (secrets kept out of the command line); None: none."""
        return None


class MasterLauncher(_Launcher):
    """Abstract strategy for launching the master instance of the cluster.

    Args:
        runtime_group: the group where the workers will be started.
        host: where the master runs: None (this machine, as lazycluster's default
            launchers do) or a host of the group.
    """

    def __init__(self, runtime_group: RuntimeGroup, host: str | None = None) -> None:
        self._init_log()
        self._group = runtime_group
        self._host = host
        self._port: int | None = None
        self._process: SupervisedProcess | subprocess.Popen[Any] | None = None
        """The master's process: a supervised one (the default ``start``), or the
        ``subprocess.Popen`` an overriding ``start`` stored (lazycluster's way); either
        has ``pid``, ``poll()``, ``wait()``, ``returncode``, ``terminate()``, ``kill()``."""
        self._context: ClusterContext | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self._host or 'here'}, port={self._port})"

    @property
    def port(self) -> int | None:
        """The port where the master instance is started on; None if not yet started."""
        return self._port

    @property
    def process(self) -> SupervisedProcess | subprocess.Popen[Any] | None:
        """The master's process (Popen-like: ``pid``, ``poll()``, ``wait()``,
        ``returncode``, ``terminate()``); None if not yet started (or an overriding
        ``start`` started it on a host through a task: then the cluster supervises it)."""
        return self._process

    def get_launch_command(self, port: int, bind_address: str) -> str:
        """The shell command that runs the master listening on ``bind_address:port``
        (prefix it with ``exec``). Override it, or override :meth:`start`."""
        raise NotImplementedError(
            f"{type(self).__name__} must override get_launch_command(port, bind_address) or start()"
        )

    def check_ready(self, address: str, port: int, timeout: float) -> None:
        """Called once the master listens, with the address and port that reach it from
        here: raise if it cannot serve yet (a handshake). By default listening is enough.

        Raises:
            Exception: it is not ready (the cluster raises MasterStartError with it).
        """

    def start(self, ports: list[int] | int, timeout: int = 3, debug: bool = False) -> list[int]:
        """Launch the master and wait until it is ready.

        Args:
            ports: the port for the master; a list: the first one free in the group
                (and here), the others left for the workers and tunnels.
            timeout: seconds until :class:`~actorcluster.errors.MasterStartError`.
            debug: print the master's output here as it comes.

        Returns:
            The ports left of the list (an empty list for a single port).

        Raises:
            PortInUseError: the single port given is taken in the group or here.
            NoPortsLeftError: no port of the list is free.
            MasterStartError: the master exited, or was not ready after ``timeout``
                (the message has its latest output).
        """
        context = self.cluster_context()
        candidates = list(ports) if isinstance(ports, list) else []
        previous = context.master
        try:
            port = self._launch_at_a_free_port(context, ports, candidates, timeout, debug)
        except BaseException:
            context.restore_master(previous)
            raise
        self._port = port
        log.info("cluster.master.started", cluster=context.name, host=self._host, port=port)
        taken = context.pool.taken
        return [p for p in candidates if p not in taken]

    def _launch_at_a_free_port(
        self,
        context: ClusterContext,
        ports: list[int] | int,
        candidates: list[int],
        timeout: int,
        debug: bool,
    ) -> int:
        """Launch the master (see :meth:`start`); return its port."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if isinstance(ports, list):
                port = context.take_ports(candidates, 1)[0]
            else:
                port = context.claim_port(ports)
            try:
                self._launch(context, port, candidates, timeout, debug)
                return port
            except MasterStartError as error:
                # Another program took the port between our check and the master's bind:
                # with a list of ports, the next free one is tried.
                if not (candidates and attempt < _PORT_ATTEMPTS and _port_was_taken(error)):
                    raise
                log.debug("cluster.master.port_taken", cluster=context.name, port=port)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _launch(
        self, context: ClusterContext, port: int, candidates: list[int], timeout: int, debug: bool
    ) -> None:
        """Start the master at ``port``, wait until it listens, wire it, handshake.

        Raises:
            MasterStartError: it exited, did not listen in time, or failed the handshake.
        """
        runtime = context.runtime(self._host)
        command = self.get_launch_command(port, context.master_bind_address(self._host))
        env = _with_launch_env(runtime, self.get_launch_env(runtime))
        process, state = context.start_process(MASTER, runtime, command, debug=debug, env=env)
        self._process = process
        spare = candidates or [*context.ports, *_spare_ports(context)]
        try:
            # Wired while it starts up (a tunnel needs no listener to open): its address
            # is known at once, for workers that wait for it (starts_with_master).
            endpoint = context.wire_master(runtime, port, spare)
            context.wait_listening(runtime, port, state, float(timeout))
            try:
                self.check_ready(*endpoint.here, max(1.0, float(timeout)))
            except Exception as exc:
                raise context.master_start_error(runtime.host, port, state, str(exc)) from exc
            if state.exit_codes:  # what listens there is not ours
                raise context.master_start_error(runtime.host, port, state, "it exited")
            context.master_ready()
        except BaseException:
            process.stop()
            self._process = None
            context.unwire_master()
            raise

    def cleanup(self) -> None:
        """Release all resources: stop the master (its process group is killed; a
        ``Popen`` an overriding ``start`` stored: it and every process it started)."""
        process = self._process
        if isinstance(process, subprocess.Popen):
            context = self._context
            if context is not None:
                context.coordinator.stop_processes([MASTER])
            if process.poll() is None:
                stop_popen(process)
        elif process is not None:
            process.stop()


def _with_launch_env(runtime: Runtime, extra: Mapping[str, str] | None) -> dict[str, str] | None:
    """The runtime's environment with a launcher's additions (None: the runtime's)."""
    return None if not extra else {**runtime.env_variables, **extra}


def _spare_ports(context: ClusterContext) -> list[int]:
    from actorcluster.cluster.runtime_cluster import MasterWorkerCluster

    return list(
        range(
            MasterWorkerCluster.DEFAULT_PORT_RANGE_START, MasterWorkerCluster.DEFAULT_PORT_RANGE_END
        )
    )


class WorkerLauncher(_Launcher):
    """Abstract strategy for launching worker instances within a group.

    Override :meth:`start` (lazycluster's contract: set ``_ports_per_host`` and raise
    :class:`~actorcluster.errors.NoPortsLeftError` when ports run out), or just
    :meth:`get_launch_command` (and :meth:`place` for another placement than round
    robin). :meth:`setup_worker_ssh_tunnels` makes workers reach each other through
    this machine.

    Args:
        runtime_group: the group where the workers will be started in.
    """

    workers_talk = False
    """Whether workers talk to each other (then each gets a contact port tunnelled
    through this machine, as lazycluster's ``setup_worker_ssh_tunnels``)."""

    starts_with_master = False
    """Whether its workers wait for the master themselves (they retry until it listens):
    then :meth:`MasterWorkerCluster.start` launches them as soon as the master's address
    is known, and both start up at once."""

    workers_reconnect = False
    """Whether its workers reconnect to a restarted master by themselves (dask's do):
    then a master restart leaves them running; else they are restarted after it (OTP's
    rest_for_one)."""

    def __init__(self, runtime_group: RuntimeGroup) -> None:
        self._init_log()
        self._group = runtime_group
        self._ports_per_host: dict[str, list[int]] = {}
        self._slots: list[WorkerSlot] = []
        self._processes: dict[str, SupervisedProcess] = {}
        self._tunnels: list[Tunnel] = []
        self._context: ClusterContext | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ports_per_host={self._ports_per_host})"

    @property
    def ports_per_host(self) -> dict[str, list[int]]:
        """Per host, the ports where its worker instances are reachable."""
        return self._ports_per_host

    @property
    def processes(self) -> list[SupervisedProcess]:
        """The workers' supervised processes (status, restarts, output, ``stop()``)."""
        return list(self._processes.values())

    def place(self, worker_count: int) -> list[str]:
        """The host of each worker: round robin over the group's hosts."""
        hosts = self._group.hosts
        if not hosts:
            raise UsageError("the group has no runtimes to start workers on")
        return [hosts[index % len(hosts)] for index in range(worker_count)]

    def get_launch_command(self, slot: WorkerSlot) -> str:
        """The shell command that runs the worker of ``slot`` (prefix it with ``exec``).
        Override it, or override :meth:`start`."""
        raise NotImplementedError(
            f"{type(self).__name__} must override get_launch_command(slot) or start()"
        )

    def start(
        self, worker_count: int, master_port: int, ports: list[int], debug: bool = False
    ) -> list[int]:
        """Launch the workers in the group, all at once.

        Args:
            worker_count: how many.
            master_port: the master's port (each worker's slot says how its host
                reaches the master).
            ports: the ports to take the workers' ports from (only free ones are used).
            debug: print their output here as it comes.

        Returns:
            The ports left of the list.

        Raises:
            NoPortsLeftError: not enough free ports for all workers.
        """
        context = self.cluster_context()
        if not isinstance(worker_count, int) or worker_count < 1:
            raise UsageError(f"worker_count must be an int >= 1, not {worker_count!r}")
        hosts = self.place(worker_count)
        tunnelled = context.tunnels and self.workers_talk
        try:
            taken = context.take_ports(ports, worker_count * (2 if tunnelled else 1))
        except NoPortsLeftError:
            raise NoPortsLeftError(list(ports), "the group") from None
        listen = taken[:worker_count]
        contact = taken[worker_count:] if tunnelled else listen
        slots = context.worker_slots(hosts, listen, contact)
        offset = len(self._slots)
        slots = [_renumbered(slot, offset) for slot in slots]
        for slot in slots:
            command = self.get_launch_command(slot)
            child_id = context.next_worker_id()
            runtime = self._group.get_runtime(slot.host)
            env = _with_launch_env(runtime, self.get_launch_env(runtime))
            process, _ = context.start_process(child_id, runtime, command, debug=debug, env=env)
            self._processes[child_id] = process
            self._ports_per_host.setdefault(slot.host, []).append(slot.port)
        self._slots += slots
        if tunnelled:
            self._tunnels += context.wire_workers(slots)
        log.info("cluster.workers.started", cluster=context.name, count=worker_count)
        held = context.pool.taken
        return [p for p in ports if p not in held]

    def setup_worker_ssh_tunnels(self) -> None:
        """Route worker-to-worker traffic through this machine: each worker reachable
        here and on every host (lazycluster's: at its port of :attr:`ports_per_host`,
        which an overriding ``start`` fills; the default :meth:`start`: at its contact
        port, and it does this itself when :attr:`workers_talk`). Tunnels are the
        cluster's (closed at cleanup), none where a host shares this machine's loopback.
        """
        context = self.cluster_context()
        slotted = {(slot.host, slot.port) for slot in self._slots}
        self._tunnels += context.wire_workers(self._slots)
        for host, ports in self._ports_per_host.items():
            for port in ports:
                if (host, port) not in slotted:
                    expose_to_group(context, host, port, port)

    def cleanup(self) -> None:
        """Release all resources: stop every worker (all at once; each process group
        is killed) and wait until they are gone."""
        context = self._context
        if context is not None and self._processes:
            context.coordinator.stop_processes(list(self._processes))
        self._processes.clear()

    def discard(self) -> None:
        """Stop every worker and forget them, closing their tunnels and giving their
        ports back: the master they were told of is not the one that came up."""
        self.cleanup()
        context = self._context
        if context is not None:
            context.drop_tunnels(self._tunnels)
            ports = {port for slot in self._slots for port in (slot.port, slot.contact_port)}
            context.release_ports(sorted(ports))
        self._tunnels.clear()
        self._slots.clear()
        self._ports_per_host.clear()


def _renumbered(slot: WorkerSlot, offset: int) -> WorkerSlot:
    if offset == 0:
        return slot
    from dataclasses import replace

    return replace(slot, index=slot.index + offset)
