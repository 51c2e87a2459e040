"""Ports across a cluster's group: :class:`PortPool`, owned by the cluster's coordinator.

Every port a cluster uses (the master's, each worker's, each tunnel's) is taken from
one pool, so no two of its parts ever get the same port, also when hosts share a
network (containers on one machine, or the test bed's loopback hosts). A probe asks
every host about every candidate in one request per host, all hosts at once, and this
machine too (the master and the tunnels' listeners here need the ports as well).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster.errors import NoPortsLeftError, PortInUseError, UsageError
from actorcluster.groups.ports import check_ports, free_everywhere
from actorcluster.runtimes.ports import check_port
from actorcluster.tunnels import port_is_free

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from actorcluster.runtimes import Runtime

__all__ = ["GROUP_SIDE", "PortPool"]

GROUP_SIDE = "the group"
"""The side named in the pool's errors."""
_ANY_ADDRESS = "0.0.0.0"  # a probe bind, closed at once: "free on every address"


class PortPool:
    """The ports a cluster took, and how to take more.

    Args:
        runtimes: gives the group's runtimes by host (read at each probe).
        check_local: also require the ports to be free on this machine.
    """

    def __init__(self, runtimes: Callable[[], Mapping[str, Runtime]], check_local: bool) -> None:
        self._runtimes = runtimes
        self._check_local = check_local
        self._taken: set[int] = set()
        self._reserved: set[int] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PortPool taken={sorted(self._taken)}>"

    @property
    def taken(self) -> set[int]:
        """The ports the cluster holds."""
        with self._lock:
            return set(self._taken)

    def _free(self, ports: Sequence[int]) -> list[bool]:
        verdicts = [True] * len(ports)
        for host_verdicts in free_everywhere(self._runtimes(), ports).values():
            verdicts = [a and b for a, b in zip(verdicts, host_verdicts, strict=True)]
        if self._check_local:
            verdicts = [
                ok and port_is_free(_ANY_ADDRESS, p) for ok, p in zip(verdicts, ports, strict=True)
            ]
        return verdicts

    def take(self, candidates: object, count: int) -> list[int]:
        """The first ``count`` of ``candidates`` that are free everywhere and not taken
        yet; they are the cluster's from now on.

        Raises:
            NoPortsLeftError: fewer than ``count`` are.
            UsageError: ``candidates`` is not a list of port numbers.
        """
        ports = check_ports(candidates)
        if count < 0:
            raise UsageError(f"count must be >= 0, not {count}")
        if count == 0:
            return []
        with self._lock:
            reserved = [port for port in dict.fromkeys(ports) if port in self._reserved]
            if len(reserved) >= count:
                self._reserved.difference_update(reserved[:count])
                return reserved[:count]
            fresh = [port for port in dict.fromkeys(ports) if port not in self._taken]
            free = (
                [port for port, ok in zip(fresh, self._free(fresh), strict=True) if ok]
                if fresh
                else []
            )
            if len(free) < count:
                raise NoPortsLeftError(ports, GROUP_SIDE)
            chosen = free[:count]
            self._taken.update(chosen)
            return chosen

    def reserve(self, port: int) -> bool:
        """Take ``port`` for a launcher's start (or a restart at the port a process
        held): a :meth:`claim` of it, or a launcher asking whether it is free, then
        succeeds once. False if it is not free."""
        with self._lock:
            if port not in self._taken:
                if not self._free([port])[0]:
                    return False
                self._taken.add(port)
            self._reserved.add(port)
            return True

    def is_reserved(self, port: int) -> bool:
        """Whether ``port`` is reserved (see :meth:`reserve`)."""
        with self._lock:
            return port in self._reserved

    def claim(self, port: object) -> int:
        """Take exactly ``port``.

        Raises:
            PortInUseError: it is taken here, on a host, or by the cluster already.
            UsageError: it is not a port number.
        """
        number = check_port(port)
        with self._lock:
            if number in self._reserved:
                self._reserved.discard(number)
                return number
            if number in self._taken or not self._free([number])[0]:
                raise PortInUseError(number, GROUP_SIDE)
            self._taken.add(number)
            return number

    def release(self, ports: Iterable[int]) -> None:
        """Give ports back (their users stopped)."""
        given = set(ports)
        with self._lock:
            self._taken.difference_update(given)
            self._reserved.difference_update(given)

    def settle(self) -> None:
        """A launcher's start is over: what it did not use of its reservations stays
        the cluster's, reserved no more."""
        with self._lock:
            self._reserved.clear()
