"""The runtimes a keeper keeps between calls.

A request borrows a connected runtime for each host it names (one no other request is
using at the time: a second call to the same host at once gets a runtime of its own), and
gives it back when it ends; a runtime that is not connected any more, or whose request
was interrupted, is cleaned up instead (it kills what it started on its host). Runtimes
are the library's own (:meth:`Runtime.connect_many`): the same supervision tree, agents,
sessions and host key checks as a command line call without a keeper.

``localhost`` is not kept: its agent would be the keeper's child, with the keeper's
environment and limits rather than the caller's; a call naming it runs by itself.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster._workers import THREADS
from actorcluster.actors.context import LOCALHOST
from actorcluster.cli.settings import KEPT_RUNTIMES, cleanup_all
from actorcluster.runtimes import ConnectedRuntimes, Runtime

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Lease", "RunHere", "RuntimePool"]

log = get_logger(__name__)

_IDLE_PER_KIND = 4
"""Idle runtimes kept for one host and kind of connection."""

_Kind = tuple[str, str | None, str]


def _kind(host: str, working_dir: str | None, kwargs: Mapping[str, Any]) -> _Kind:
    return host, working_dir, json.dumps(dict(kwargs), sort_keys=True, default=str)


class RunHere(BaseException):
    """The call must run in the caller's process (it names ``localhost``); raised
    before it printed anything. A ``BaseException``: no command catches it."""


class Lease:
    """The runtimes one request borrowed."""

    def __init__(self) -> None:
        self.borrowed: list[tuple[_Kind, Runtime]] = []


class RuntimePool:
    """Connected runtimes by host and connection settings, lent to one request at a time."""

    def __init__(self) -> None:
        self._idle: dict[_Kind, list[Runtime]] = {}
        self._lock = threading.Lock()

    def hosts(self) -> list[str]:
        """The hosts of the idle runtimes."""
        with self._lock:
            return sorted({kind[0] for kind, runtimes in self._idle.items() if runtimes})

    def connect(
        self,
        lease: Lease,
        hosts: Sequence[str],
        working_dir: str | None,
        kwargs: Mapping[str, Any],
        timeout: float,
    ) -> ConnectedRuntimes:
        """What :meth:`Runtime.connect_many` would give: kept runtimes where there are
        some, the others connected now (and kept)."""
        if LOCALHOST in hosts:
            raise RunHere
        runtimes: dict[str, Runtime] = {}
        missing: list[str] = []
        for host in dict.fromkeys(hosts):
            runtime = self._take(_kind(host, working_dir, kwargs))
            if runtime is None:
                missing.append(host)
            else:
                runtimes[host] = runtime
        errors = {}
        if missing:
            fresh = Runtime.connect_many(
                missing, working_dir=working_dir, connection_kwargs=kwargs, timeout=timeout
            )
            runtimes.update(fresh.runtimes)
            errors = dict(fresh.errors)
        for host, runtime in runtimes.items():
            KEPT_RUNTIMES.add(runtime)
            lease.borrowed.append((_kind(host, working_dir, kwargs), runtime))
        ordered = {host: runtimes[host] for host in dict.fromkeys(hosts) if host in runtimes}
        return ConnectedRuntimes(runtimes=ordered, errors=errors)

    def _take(self, kind: _Kind) -> Runtime | None:
        with self._lock:
            idle = self._idle.get(kind, [])
            while idle:
                runtime = idle.pop()
                if runtime.is_connected:
                    return runtime
                self._discard([runtime])
        return None

    def give_back(self, lease: Lease, keep: bool) -> None:
        """The request ended: keep its runtimes for the next (``keep``, and connected),
        else clean them up."""
        dropped = []
        with self._lock:
            for kind, runtime in lease.borrowed:
                idle = self._idle.setdefault(kind, [])
                if keep and runtime.is_connected and len(idle) < _IDLE_PER_KIND:
                    idle.append(runtime)
                else:
                    dropped.append(runtime)
        lease.borrowed.clear()
        self._discard(dropped)

    def _discard(self, runtimes: list[Runtime]) -> None:
        for runtime in runtimes:
            KEPT_RUNTIMES.discard(runtime)
        if runtimes:
            log.info("keeper.runtimes.dropped", hosts=[runtime.host for runtime in runtimes])
            THREADS.start(cleanup_all, runtimes, name="keeper-cleanup")

    def close(self) -> None:
        """Clean every kept runtime up (the keeper is stopping), waiting for it."""
        with self._lock:
            runtimes = [runtime for idle in self._idle.values() for runtime in idle]
            self._idle.clear()
        for runtime in runtimes:
            KEPT_RUNTIMES.discard(runtime)
        cleanup_all(runtimes)
