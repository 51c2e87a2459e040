"""Ports across a group: which are free everywhere, and the hub-and-spoke exposures.

Every probe is one ``ports_free`` request per host, all hosts at once
(:func:`~actorcluster.groups.fanout.on_agents`): asking about 100 ports on 20 hosts costs
one round trip, not 2,000 SSH sessions. Exposures go through this machine, the hub:
``expose_to_runtimes`` forwards a port on every runtime to a local port here;
``expose_from_runtime`` also forwards a local port here to one runtime's service, so
every runtime reaches that service at the group port. Each tunnel is a supervised actor
on its runtime's connection, opened on all hosts at once; if one host cannot open its
tunnel the others are closed again and the error (naming the host) is raised.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError, NoPortsLeftError, PortInUseError, UsageError
from actorcluster.groups.fanout import on_agents, on_threads
from actorcluster.runtimes.ports import check_port
from actorcluster.tunnels import LOOPBACK, port_is_free

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from actorcluster.runtimes import Runtime

__all__ = [
    "GROUP",
    "INTERNAL_PORTS",
    "expose_from_runtime",
    "expose_to_runtimes",
    "first_free_port",
    "free_everywhere",
    "get_free_port",
    "has_free_port",
]

log = get_logger(__name__)

GROUP = "the group"
"""The side named in a group's port errors."""
INTERNAL_PORTS = range(5800, 6000)
"""Where the hub's own local port of ``expose_from_runtime`` is taken from (lazycluster's
internal port range)."""
_ANY_ADDRESS = "0.0.0.0"  # a probe bind, closed at once: "free on every address"


def check_ports(ports: object, name: str = "ports") -> list[int]:
    """``ports`` as a list of valid port numbers.

    Raises:
        UsageError: it is not a list (or tuple or range) of ints in 1..65535.
    """
    if not isinstance(ports, (list, tuple, range)):
        raise UsageError(f"{name} must be a list of port numbers, not {ports!r}")
    return [check_port(port, name) for port in ports]


def first_free_port(ports: Sequence[int], verdicts: Iterable[Sequence[bool]]) -> int:
    """The first of ``ports`` that every host's verdicts (one bool per port, in
    order) call free.

    Raises:
        NoPortsLeftError: no port is free everywhere, or ``ports`` is empty.
    """
    free = [True] * len(ports)
    for host_verdicts in verdicts:
        free = [both and ok for both, ok in zip(free, host_verdicts, strict=True)]
    for port, ok in zip(ports, free, strict=True):
        if ok:
            return port
    raise NoPortsLeftError(list(ports), GROUP)


def free_everywhere(runtimes: Mapping[str, Runtime], ports: Sequence[int]) -> dict[str, list[bool]]:
    """Each host's verdict on each port, all hosts asked at once.

    Raises:
        ActorClusterError: a host could not answer (the first such host's error).
    """
    outcomes = on_agents(runtimes, lambda client: client.ports_free(ports))
    outcomes.raise_first()
    return outcomes.values


def has_free_port(runtimes: Mapping[str, Runtime], port: int) -> bool:
    """Whether ``port`` is free on every one of ``runtimes``."""
    port = check_port(port)
    return all(free[0] for free in free_everywhere(runtimes, [port]).values())


def get_free_port(runtimes: Mapping[str, Runtime], ports: object, check_local: bool) -> int:
    """The first of ``ports`` free on every runtime (and here, if ``check_local``).

    Raises:
        NoPortsLeftError: none is, or the list is empty.
        UsageError: ``ports`` is not a list of port numbers.
    """
    checked = check_ports(ports)
    if not checked:
        raise NoPortsLeftError([], GROUP)
    verdicts = list(free_everywhere(runtimes, checked).values())
    if check_local:
        verdicts.append([port_is_free(_ANY_ADDRESS, port) for port in checked])
    return first_free_port(checked, verdicts)


def _without_local_loop(
    runtimes: Mapping[str, Runtime], local_port: int, port: int
) -> dict[str, Runtime]:
    """The runtimes that need a tunnel: the ``localhost`` runtime forwarding a port to
    itself needs none (the service is there already), as in lazycluster."""
    return {
        host: runtime
        for host, runtime in runtimes.items()
        if not (runtime.handle.is_local and local_port == port)
    }


def expose_to_runtimes(
    runtimes: Mapping[str, Runtime], local_port: int, runtime_port: object
) -> tuple[int, dict[str, str]]:
    """Forward ``runtime_port`` on every runtime to ``local_port`` here.

    Returns:
        The runtime port used, and each host's process key.

    Raises:
        PortInUseError: the single port given is taken on a runtime.
        NoPortsLeftError: none of the ports listed is free on every runtime.
        ActorClusterError: a host could not open its tunnel (the others are closed).
    """
    local_port = check_port(local_port, "local_port")
    if isinstance(runtime_port, (list, tuple, range)):
        port = get_free_port(runtimes, runtime_port, check_local=False)
    else:
        port = local_port if runtime_port is None else check_port(runtime_port, "runtime_port")
        if not has_free_port(_without_local_loop(runtimes, local_port, port), port):
            raise PortInUseError(port, GROUP)
    targets = _without_local_loop(runtimes, local_port, port)
    keys = _open_all(targets, lambda rt: rt.expose_port_to_runtime(local_port, port))
    log.info("group.port.exposed", local_port=local_port, runtime_port=port, hosts=len(keys))
    return port, keys


def expose_from_runtime(
    source: Runtime, others: Mapping[str, Runtime], runtime_port: int, group_port: object
) -> tuple[int, dict[str, str]]:
    """Make ``runtime_port`` of ``source`` reachable at the group port on every other
    runtime, through a local port here (taken from :data:`INTERNAL_PORTS`).

    Returns:
        The group port used, and each host's process key (the source's included).

    Raises:
        PortInUseError: the single group port given is taken on another runtime.
        NoPortsLeftError: no group port listed is free on every other runtime, or no
            internal port is free here.
        ActorClusterError: a host could not open its tunnel (the others are closed).
    """
    runtime_port = check_port(runtime_port, "runtime_port")
    if isinstance(group_port, (list, tuple, range)):
        port = get_free_port(others, group_port, check_local=False)
    else:
        port = runtime_port if group_port is None else check_port(group_port, "group_port")
        if not has_free_port(others, port):
            raise PortInUseError(port, GROUP)
    keys: dict[str, str] = {}
    for local_port in INTERNAL_PORTS:
        if local_port == port or not port_is_free(LOOPBACK, local_port):
            continue
        try:
            keys[source.host] = source.expose_port_from_runtime(runtime_port, local_port)
        except PortInUseError:
            continue  # taken between the probe and the bind: the next one
        break
    else:
        raise NoPortsLeftError(list(INTERNAL_PORTS), "local")
    targets = _without_local_loop(others, local_port, port)
    try:
        keys.update(_open_all(targets, lambda rt: rt.expose_port_to_runtime(local_port, port)))
    except BaseException:
        _close({source.host: source}, keys)
        raise
    log.info("group.port.shared", host=source.host, runtime_port=runtime_port, group_port=port)
    return port, keys


def _open_all(
    runtimes: Mapping[str, Runtime], open_one: Callable[[Runtime], str]
) -> dict[str, str]:
    """Open a tunnel on every runtime at once; all or none."""
    outcomes = on_threads(runtimes, open_one, what="opening a tunnel")
    if outcomes.errors:
        _close(runtimes, outcomes.values)
        outcomes.raise_first()
    return dict(outcomes.values)


def _close(runtimes: Mapping[str, Runtime], keys: Mapping[str, str]) -> None:
    for host, key in keys.items():
        runtime = runtimes.get(host)
        if runtime is not None:
            with contextlib.suppress(ActorClusterError):
                runtime.stop_process(key)
