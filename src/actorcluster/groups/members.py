"""A group's runtimes by host, and choosing among them: :class:`Members`."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from actorcluster.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from actorcluster.runtimes import Runtime

__all__ = ["Members", "as_hosts"]


def as_hosts(value: str | Sequence[str] | None, name: str) -> list[str]:
    """A host argument as a list: one host, a list of hosts, or None (no hosts).

    Raises:
        UsageError: it is none of these.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(host, str) for host in value
    ):
        return list(value)
    raise UsageError(f"{name} must be a host name or a list of host names, not {value!r}")


def _reachable(runtime: Runtime) -> bool:
    """Whether the runtime's agent is up now (not stopped, not reconnecting)."""
    return runtime.handle.ready


class Members:
    """The runtimes of a group by host, in the order they joined; thread-safe.

    It also counts the tasks the group started on each host that have not ended yet, so
    that tasks sent in a burst spread over the hosts before any of them has begun.
    """

    def __init__(self) -> None:
        self._runtimes: dict[str, Runtime] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runtimes)

    def all(self) -> dict[str, Runtime]:
        """Every runtime by host (a copy)."""
        with self._lock:
            return dict(self._runtimes)

    def contains(self, host: str) -> bool:
        """Whether a runtime of that host is a member."""
        return host in self._runtimes

    def add(self, runtime: Runtime) -> None:
        """Add a runtime.

        Raises:
            UsageError: a runtime of the same host is a member already.
        """
        with self._lock:
            if runtime.host in self._runtimes:
                raise UsageError(f"a runtime of host {runtime.host} is already in the group")
            self._runtimes[runtime.host] = runtime

    def remove(self, host: str) -> Runtime | None:
        """Remove the host's runtime; the runtime, or None if there was none."""
        with self._lock:
            return self._runtimes.pop(host, None)

    def get(self, host: str) -> Runtime:
        """The host's runtime.

        Raises:
            UsageError: the host is not in the group.
        """
        runtime = self._runtimes.get(host)
        if runtime is None:
            raise UsageError(f"host {host!r} is not in the group (hosts: {list(self._runtimes)})")
        return runtime

    def select(
        self,
        include_hosts: str | Sequence[str] | None = None,
        exclude_hosts: str | Sequence[str] | None = None,
    ) -> dict[str, Runtime]:
        """The runtimes of ``include_hosts`` (each must be a member), or all but those
        of ``exclude_hosts``, or all; in the group's order.

        Raises:
            UsageError: both were given, or an included host is not in the group.
        """
        include = as_hosts(include_hosts, "include_hosts")
        exclude = set(as_hosts(exclude_hosts, "exclude_hosts"))
        if include and exclude:
            raise UsageError("give include_hosts or exclude_hosts, not both")
        runtimes = self.all()
        if include:
            for host in include:
                self.get(host)  # raises for a host that is not a member
            return {host: runtime for host, runtime in runtimes.items() if host in include}
        return {host: runtime for host, runtime in runtimes.items() if host not in exclude}

    def least_busy(self, avoid: str | None = None) -> Runtime:
        """The runtime with the fewest tasks running now (the first such, in order),
        among those reachable now if any is (and other than ``avoid`` if another is).

        Raises:
            UsageError: the group is empty.
        """
        runtimes = list(self.all().values())
        if not runtimes:
            raise UsageError("the group is empty: add a runtime first")
        for choice in (
            [rt for rt in runtimes if _reachable(rt) and rt.host != avoid],
            [rt for rt in runtimes if _reachable(rt)],
            runtimes,
        ):
            if choice:
                return min(choice, key=self.busy)
        raise AssertionError("unreachable: runtimes is not empty")

    def failover(self, failed: Runtime) -> Runtime:
        """Where a task lost with ``failed``'s host goes next: the least busy reachable
        runtime, another one if there is one."""
        return self.least_busy(avoid=failed.host)

    def busy(self, runtime: Runtime) -> int:
        """How many tasks run on the runtime now (those the group just started count at
        once, before they have begun)."""
        running = runtime.handle.running_task_count
        return max(running, self._in_flight[runtime.host])

    def task_started(self, host: str) -> None:
        """The group started a task on ``host``."""
        with self._lock:
            self._in_flight[host] += 1

    def task_ended(self, host: str) -> None:
        """A task the group started on ``host`` ended."""
        with self._lock:
            self._in_flight[host] -= 1
            if self._in_flight[host] <= 0:
                del self._in_flight[host]
