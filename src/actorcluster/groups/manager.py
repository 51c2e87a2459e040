"""RuntimeManager: runtimes discovered from ssh_config, with lazycluster's API.

Discovery reads the ssh_config (``~/.ssh/config``, ``$ACTORCLUSTER_SSH_CONFIG`` or the
path given; ``Include`` followed as OpenSSH does) and connects every concrete ``Host``
at once, within one bounded time. A host that does not come up (unreachable,
unresolvable, its key refused, no suitable python) goes to :attr:`inactive_hosts` with
the typed error saying why; discovery carries on with the rest.

From asyncio: ``await RuntimeManager.discover()`` and ``await manager.create_group_async(...)``
do the same without blocking the event loop.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import NoRuntimesDetectedError, UsageError
from actorcluster.groups.fanout import on_threads
from actorcluster.groups.group import RuntimeGroup
from actorcluster.groups.members import as_hosts
from actorcluster.groups.tables import print_table
from actorcluster.groups.tree import GroupTree
from actorcluster.runtimes import Runtime
from actorcluster.ssh import config_hosts, config_path

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pykka

    from actorcluster.errors import ActorClusterError

__all__ = ["DISCOVERY_TIMEOUT", "RuntimeManager"]

log = get_logger(__name__)

DISCOVERY_TIMEOUT = 30.0
"""Seconds discovery waits for the hosts to come up, all together."""
_ids = itertools.count(1)
_LOOPBACK_NAMES = ("localhost", "127.0.0.1")


def _candidates(hosts: list[str]) -> list[str]:
    """The hosts to probe: ``localhost`` and ``127.0.0.1`` are one host (lazycluster)."""
    seen_loopback = False
    found = []
    for host in hosts:
        if host in _LOOPBACK_NAMES:
            if seen_loopback:
                continue
            seen_loopback = True
        found.append(host)
    return found


def _criteria(
    gpu_required: bool,
    min_memory: int | None,
    min_cpu_cores: int | None,
    installed_executables: str | Sequence[str] | None,
    filter_commands: str | Sequence[str] | None,
) -> dict[str, Any]:
    """The filters as ``Runtime.check_filter`` takes them; {} when there are none.

    Raises:
        UsageError: a filter has a value of the wrong kind.
    """
    if not isinstance(gpu_required, bool):
        raise UsageError(f"gpu_required must be True or False, not {gpu_required!r}")
    for name, value in (("min_memory", min_memory), ("min_cpu_cores", min_cpu_cores)):
        bad = isinstance(value, bool) or not isinstance(value, int) or value < 0
        if value is not None and bad:
            raise UsageError(f"{name} must be None or an int >= 0, not {value!r}")
    executables = as_hosts(installed_executables, "installed_executables")
    commands = as_hosts(filter_commands, "filter_commands")
    if not (gpu_required or min_memory or min_cpu_cores or executables or commands):
        return {}
    return {
        "gpu_required": gpu_required,
        "min_memory": min_memory,
        "min_cpu_cores": min_cpu_cores,
        "installed_executables": executables or None,
        "filter_commands": commands or None,
    }


class RuntimeManager:
    """Finds the runtimes an ssh_config describes and makes groups of them.

    Args:
        ssh_config_path: the ssh_config to read; None: ``$ACTORCLUSTER_SSH_CONFIG``,
            else ``~/.ssh/config``.
        connection_kwargs: for every host, as ``Runtime``'s.
        timeout: seconds discovery waits for the hosts, all together.
        supervisor: where the detected runtimes' supervisor runs; None: the root tree.
        retain_tasks: as ``Runtime``'s.

    Raises:
        NoRuntimesDetectedError: no host came up (the message gives each one's reason;
            :attr:`inactive_hosts` is not reachable then, so the error carries it).
        ConfigurationError: the ssh_config cannot be read.
    """

    def __init__(
        self,
        ssh_config_path: str | None = None,
        *,
        connection_kwargs: Mapping[str, Any] | None = None,
        timeout: float = DISCOVERY_TIMEOUT,
        supervisor: pykka.ActorRef[Any] | None = None,
        retain_tasks: int | None = None,
    ) -> None:
        kwargs = dict(connection_kwargs or {})
        if ssh_config_path is not None:
            kwargs["ssh_config_path"] = ssh_config_path
        source = config_path(kwargs.get("ssh_config_path"))[0]
        hosts = _candidates(config_hosts(kwargs.get("ssh_config_path")))
        self.inactive_hosts: dict[str, ActorClusterError] = {}
        """The hosts that did not come up, each with the error saying why."""
        if not hosts:
            where = f"ssh_config {source}" if source else "~/.ssh/config (there is none)"
            raise NoRuntimesDetectedError(f"no Host entries in {where}")
        log.info("manager.discovery.started", hosts=len(hosts), ssh_config=source)
        tree = GroupTree(supervisor, name=f"manager-{next(_ids)}")
        connected = Runtime.connect_many(
            hosts,
            connection_kwargs=kwargs,
            supervisor=tree.ref,
            retain_tasks=retain_tasks,
            timeout=timeout,
        )
        errors = connected.errors
        self.inactive_hosts = {host: errors[host] for host in hosts if host in errors}
        if not connected.runtimes:
            tree.stop()
            reasons = "; ".join(str(error) for error in self.inactive_hosts.values())
            raise NoRuntimesDetectedError(f"none of the {len(hosts)} host(s) came up: {reasons}")
        active = {host: connected.runtimes[host] for host in hosts if host in connected.runtimes}
        self._group = RuntimeGroup._of(active, tree)
        log.info(
            "manager.discovery.finished", active=len(active), inactive=len(self.inactive_hosts)
        )

    @classmethod
    async def discover(cls, ssh_config_path: str | None = None, **kwargs: Any) -> RuntimeManager:
        """Create a manager from asyncio without blocking the event loop."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        return await asyncio.to_thread(cls, ssh_config_path, **kwargs)

    def __repr__(self) -> str:
        return f"<RuntimeManager active={self.hosts} inactive={list(self.inactive_hosts)}>"

    def __str__(self) -> str:
        return f"{type(self).__name__} detected: " + ", ".join(map(str, self._group.runtimes))

    def __enter__(self) -> RuntimeManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    @property
    def hosts(self) -> list[str]:
        """The hosts that came up, in ssh_config order."""
        return self._group.hosts

    def create_group(  # noqa: PLR0917 (lazycluster's signature, positional arguments and all)
        self,
        include_hosts: str | Sequence[str] | None = None,
        exclude_hosts: str | Sequence[str] | None = None,
        gpu_required: bool = False,
        min_memory: int | None = None,
        min_cpu_cores: int | None = None,
        installed_executables: str | Sequence[str] | None = None,
        filter_commands: str | Sequence[str] | None = None,
        working_dir: str | None = None,
    ) -> RuntimeGroup:
        """A group of the detected runtimes that pass every filter (checked on all
        hosts at once).

        Args:
            include_hosts: only these hosts; exclude_hosts: all but these.
            gpu_required: at least one GPU.
            min_memory: at least this many MB of memory.
            min_cpu_cores: at least this many CPU cores.
            installed_executables: each found on the host's PATH.
            filter_commands: each shell command prints ``true`` (whitespace, the
                newline included, and case ignored).
            working_dir: the working directory of the group's runtimes (they are the
                manager's runtimes: it changes for them).

        Raises:
            UsageError: both host lists given, an included host was not detected, or a
                filter has a value of the wrong kind.
            NoRuntimesDetectedError: no detected runtime passes the filters.
        """
        candidates = self._group.get_runtimes(include_hosts, exclude_hosts)
        criteria = _criteria(
            gpu_required, min_memory, min_cpu_cores, installed_executables, filter_commands
        )
        matching = candidates
        if criteria:
            outcomes = on_threads(
                candidates, lambda runtime: runtime.check_filter(**criteria), what="filters"
            )
            for host, error in outcomes.errors.items():
                log.info("manager.filter.failed", host=host, error=str(error))
            matching = {host: rt for host, rt in candidates.items() if outcomes.values.get(host)}
        if not matching:
            shown = ", ".join(f"{key}={value!r}" for key, value in criteria.items() if value)
            raise NoRuntimesDetectedError(
                f"none of {list(candidates)} passes the filters ({shown or 'host selection'})"
            )
        if working_dir is not None:
            RuntimeGroup._set_working_dir(matching, working_dir)
        log.info("manager.group.created", hosts=list(matching))
        return RuntimeGroup._of(matching, self._group._tree, working_dir)

    async def create_group_async(self, *args: Any, **kwargs: Any) -> RuntimeGroup:
        """:meth:`create_group` from asyncio, without blocking the event loop."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        return await asyncio.to_thread(self.create_group, *args, **kwargs)

    def print_runtime_info(self) -> None:
        """Print the facts of every detected runtime, then the inactive hosts."""
        print(self._summary())
        self._group.print_runtime_info()
        self.print_inactive_hosts()

    def print_hosts(self) -> None:
        """Print the detected hosts, then the inactive ones."""
        print(self._summary())
        self._group.print_hosts()
        self.print_inactive_hosts()

    def print_inactive_hosts(self) -> None:
        """Print the hosts that did not come up, each with the reason."""
        rows = [(host, str(error)) for host, error in self.inactive_hosts.items()]
        print_table(f"{len(rows)} inactive host(s)", ("host", "reason"), rows)

    def _summary(self) -> str:
        return (
            f"{self._group.runtime_count} runtime(s) and {len(self.inactive_hosts)} "
            "inactive host(s) detected"
        )

    def cleanup(self) -> None:
        """Stop every detected runtime (those in groups made from it too)."""
        self._group.cleanup()
