"""What a cluster's launchers share: its coordinator, its ports, its tunnels, where its
master is and how each host reaches it (:class:`ClusterContext`).

Wiring (``tunnels=True``, as lazycluster): every host reaches the master through this
machine, at a port of its own taken from the cluster's pool (a remote forward on the
host), and every worker is reached at a contact port here (a local forward to the port
it listens on); hosts that do not share this machine's loopback also get a remote
forward of each contact port, so workers reach each other through here. Direct wiring
(``tunnels=False``): the master and the workers listen on every address and are
reached at the addresses the SSH connections use; no tunnel at all.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from actorcluster._limits import TUNNEL_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.cluster.coordinator import DEFAULT_BACKOFF
from actorcluster.cluster.endpoints import ANY_ADDRESS, PORT_TAKEN, MasterEndpoint, WorkerSlot
from actorcluster.cluster.hosts import shared_loopback, ssh_addresses
from actorcluster.cluster.master_wait import MasterChecks
from actorcluster.cluster.ports import PortPool
from actorcluster.cluster.processes import ClusterProcesses
from actorcluster.cluster.security import direct_bind_address
from actorcluster.cluster.tunnel_set import CARRIER, ClusterTunnels, Tunnel
from actorcluster.errors import UsageError
from actorcluster.groups.fanout import on_threads
from actorcluster.runtimes import Runtime
from actorcluster.tunnels import LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.groups import RuntimeGroup
    from actorcluster.supervisors import Backoff

__all__ = [
    "ANY_ADDRESS",
    "CARRIER",
    "PORT_TAKEN",
    "ClusterContext",
    "MasterEndpoint",
    "Tunnel",
    "WorkerSlot",
]

log = get_logger(__name__)

_ids = itertools.count(1)


class ClusterContext(ClusterProcesses, ClusterTunnels, MasterChecks):
    """One cluster's shared machinery (see the module docstring).

    Args:
        group: the cluster's runtimes.
        tunnels: wire through this machine (True) or directly (False).
        max_restarts, period, backoff: the workers' restart intensity and backoff.
    """

    def __init__(
        self,
        group: RuntimeGroup,
        *,
        tunnels: bool = True,
        max_restarts: int = 10,
        period: float = 60.0,
        backoff: Backoff | None = DEFAULT_BACKOFF,
    ) -> None:
        ClusterTunnels.__init__(self)
        self.group = group
        self.tunnels = tunnels
        self._local: Runtime | None = None
        self._own_local = False
        self.pool = PortPool(self._probed_runtimes, check_local=True)
        ClusterProcesses.__init__(self, self.pool, group.supervisor, max_restarts, period, backoff)
        self.master: MasterEndpoint | None = None
        self._master_known = threading.Condition()
        self._master_tunnels: list[Tunnel] = []
        self._shared: dict[str, bool] | None = None
        self._addresses: dict[str, tuple[str, str]] | None = None
        self.ports: list[int] = []
        """The cluster's port list (for the master's tunnels when it got one port)."""
        self._closed = False

    def __repr__(self) -> str:
        return f"<ClusterContext {self.name} tunnels={self.tunnels} master={self.master}>"

    # --- runtimes -------------------------------------------------------------------

    def _probed_runtimes(self) -> dict[str, Runtime]:
        return self.group.get_runtimes()

    def local_runtime(self) -> Runtime:
        """The runtime of this machine: the group's ``localhost`` one, else one the
        cluster starts (under the group's supervisor) and stops."""
        with self._lock:
            if self._local is None:
                if self.group.contains_runtime(Runtime.LOCALHOST):
                    self._local = self.group.get_runtime(Runtime.LOCALHOST)
                else:
                    self._local = Runtime(Runtime.LOCALHOST, supervisor=self.group.supervisor)
                    self._own_local = True
            return self._local

    def runtime(self, host: str | None) -> Runtime:
        """The runtime of ``host`` in the group (None or ``localhost``: this machine's)."""
        if host is None or host == Runtime.LOCALHOST:
            return self.local_runtime()
        return self.group.get_runtime(host)

    def shared_loopback(self) -> dict[str, bool]:
        """Which group hosts share this machine's loopback (asked once)."""
        if self._shared is None:
            self._shared = shared_loopback(self.group.get_runtimes())
        return self._shared

    def addresses(self) -> dict[str, tuple[str, str]]:
        """Per host: this machine's address as it sees it, and its own (asked once)."""
        if self._addresses is None:
            self._addresses = ssh_addresses(self.group.get_runtimes())
        return self._addresses

    def await_master(self, ended: threading.Event) -> MasterEndpoint | None:
        """The master's endpoint once it is known (its process launched and its
        addresses worked out, before it is ready), or None if the start ended first
        (``ended``, set by :meth:`master_start_ended`)."""
        with self._master_known:
            self._master_known.wait_for(lambda: self.master is not None or ended.is_set())
            return self.master

    def master_start_ended(self, ended: threading.Event) -> None:
        """Set ``ended`` and wake :meth:`await_master`."""
        with self._master_known:
            ended.set()
            self._master_known.notify_all()

    def unwire_master(self) -> None:
        """Close the tunnels opened for the latest master (one that did not come up)."""
        with self._master_known:
            tunnels, self._master_tunnels = self._master_tunnels, []
        self.drop_tunnels(tunnels)

    def restore_master(self, previous: MasterEndpoint | None) -> None:
        """A start of the master failed: the cluster's master is ``previous`` again
        (the one before that start, or None)."""
        with self._master_known:
            self.master = previous

    # --- wiring ---------------------------------------------------------------------

    def master_bind_address(self, host: str | None = None) -> str:
        """Where the master (on ``host``; None: here) listens: never every address
        where one will do (see :func:`~actorcluster.cluster.security.direct_bind_address`)."""
        if self.tunnels:
            return LOOPBACK
        return direct_bind_address(self.addresses(), host, LOOPBACK, ANY_ADDRESS)

    def wire_master(self, runtime: Runtime, port: int, candidates: Sequence[int]) -> MasterEndpoint:
        """Make the master at ``runtime``:``port`` reachable from here and every host.

        Raises:
            NoPortsLeftError: no ports left in ``candidates`` for its tunnels.
            ActorClusterError: a tunnel could not be opened (names the host).
        """
        hosts = self.group.hosts
        here_host = runtime.host
        on_here = runtime.handle.is_local
        per_host: dict[str, tuple[str, int]] = {}
        opened: list[Tunnel] = []
        with self._master_known:
            self._master_tunnels = opened  # closed by forget_master, even half opened
        if not self.tunnels:
            addresses = self.addresses()
            here = (LOOPBACK, port) if on_here else (addresses[here_host][1], port)
            for host in hosts:
                if host == here_host:
                    per_host[host] = (LOOPBACK, port)
                else:
                    per_host[host] = (addresses[host][0], port) if on_here else here
        else:
            local_port = port
            if not on_here:
                local_port = self.take_ports(candidates, 1)[0]
                opened.append(self.expose_from(runtime, port, local_port))
            here = (LOOPBACK, local_port)
            others = [host for host in hosts if host != here_host]
            if others:
                forwarded = self.take_ports(candidates, len(others))
                openings = dict(zip(others, forwarded, strict=True))
                self.open_all(
                    {host: self.group.get_runtime(host) for host in others},
                    lambda rt: opened.append(self.expose_to(rt, local_port, openings[rt.host])),
                )
                per_host.update({host: (LOOPBACK, p) for host, p in openings.items()})
            if here_host in hosts:
                per_host[here_host] = (LOOPBACK, port)
        endpoint = MasterEndpoint(host=here_host, port=port, here=here, per_host=per_host)
        with self._master_known:
            self.master = endpoint
            self._master_known.notify_all()
        return endpoint

    def worker_slots(
        self, hosts: Sequence[str], ports: Sequence[int], contact_ports: Sequence[int]
    ) -> list[WorkerSlot]:
        """The slots of workers on ``hosts`` (one each) listening at ``ports`` and
        reached at ``contact_ports``."""
        master = self.master
        if master is None:
            raise UsageError("start the master before the workers")
        addresses = None if self.tunnels else self.addresses()
        slots = []
        for index, (host, port, contact) in enumerate(
            zip(hosts, ports, contact_ports, strict=True)
        ):
            runtime = self.group.get_runtime(host)
            if addresses is None:
                listen, contact_address = LOOPBACK, LOOPBACK
            else:
                listen = contact_address = addresses[host][1]  # where it is reached only
            master_address, master_port = master.per_host[host]
            slots.append(
                WorkerSlot(
                    index=index,
                    host=host,
                    port=port,
                    listen_address=listen,
                    contact_address=contact_address,
                    contact_port=contact,
                    master_address=master_address,
                    master_port=master_port,
                    working_dir=runtime.working_dir,
                )
            )
        return slots

    def wire_workers(self, slots: Sequence[WorkerSlot]) -> list[Tunnel]:
        """Make each worker reachable at its contact port here and (through here) on
        every host that does not share this machine's loopback; return the tunnels."""
        opened: list[Tunnel] = []
        if not self.tunnels:
            return opened
        tunnelled = [slot for slot in slots if slot.contact_port != slot.port]
        if not tunnelled:
            return opened
        by_host = self.group.get_runtimes()
        shared = self.shared_loopback()
        on_threads(
            {f"{slot.host}:{slot.port}": slot for slot in tunnelled},
            lambda slot: opened.append(
                self.expose_from(by_host[slot.host], slot.port, slot.contact_port)
            ),
            TUNNEL_TIMEOUT,
            "opening a tunnel",
        ).raise_first()
        apart = [host for host in by_host if not shared.get(host, False)]
        pairs = {
            f"{host}:{slot.contact_port}": (host, slot) for host in apart for slot in tunnelled
        }
        on_threads(
            pairs,
            lambda pair: opened.append(
                self.expose_to(by_host[pair[0]], pair[1].contact_port, pair[1].contact_port)
            ),
            TUNNEL_TIMEOUT,
            "opening a tunnel",
        ).raise_first()
        return opened

    # --- the end --------------------------------------------------------------------

    def close(self) -> None:
        """Close the tunnels, stop the coordinator and the runtime started here."""
        if self._closed:
            return
        self._closed = True
        self.close_tunnels()
        self.coordinator.stop()
        if self._own_local and self._local is not None:
            self._local.cleanup()
