"""RuntimeGroup: many runtimes as one, with lazycluster's ``RuntimeGroup`` API.

Everything a group does it does on all its hosts at once (see
:mod:`actorcluster.groups.fanout`): connecting, running tasks, moving files, probing
ports, opening tunnels, reading facts, stopping. The runtimes it connects run under a
supervisor of its own (:class:`~actorcluster.groups.tree.GroupTree`), so stopping the
group stops exactly those; runtimes handed in stay under their own parents.

From asyncio, ``await RuntimeGroup.connect(hosts=[...])`` creates a group without
blocking the event loop, ``await task.future`` waits for a task, and
:meth:`RuntimeGroup.join_async` and :meth:`RuntimeGroup.cleanup_async` wait on a
worker thread.
"""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import UsageError
from actorcluster.groups import ports as group_ports
from actorcluster.groups.connecting import (
    Require,
    needed,
)
from actorcluster.groups.fanout import on_threads
from actorcluster.groups.joining import Joiner
from actorcluster.groups.members import Members, as_hosts
from actorcluster.groups.starting import GroupStart, connect_group
from actorcluster.groups.tables import print_table
from actorcluster.groups.tasks import GroupTasks
from actorcluster.groups.tree import GroupTree
from actorcluster.observe import bus as observe
from actorcluster.runtimes import Runtime
from actorcluster.runtimes.handle import START_TIMEOUT
from actorcluster.runtimes.ledger import TaskLedger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pykka

    from actorcluster.runtimes.handle import RuntimeHandle
    from actorcluster.runtimes.processes import ProcessHandle

__all__ = ["RuntimeGroup"]

log = get_logger(__name__)


class RuntimeGroup(GroupStart, GroupTasks):
    """Logically related runtimes, used as one.

    Args:
        runtimes: the runtimes (they stay under their own supervisors); or
        hosts: host names to connect, all at once, under the group's supervisor.
        working_dir: the working directory on every runtime (created if missing).
        connection_kwargs: for ``hosts`` (and :meth:`add_runtime`): as ``Runtime``'s.
        supervisor: where the group's supervisor runs; None: the library's root tree.
        timeout: seconds the hosts may take to come up, all together.
        retain_tasks: as ``Runtime``'s, for the runtimes the group connects.
        require: how many ``hosts`` must come up for the group to start: ``"all"``
            (lazycluster's behaviour), ``"any"``, or a number. With fewer than all, each
            host that was down keeps being connected in the background (capped
            backoff) and joins the group once reachable (:attr:`pending_hosts`; events
            ``group.host.waiting``, ``group.host.joined``, ``group.host.gave_up``).
        keeper: as ``Runtime``'s: the runtimes use the user's connection keeper.

    Raises:
        UsageError: neither or both of ``runtimes`` and ``hosts``, two of the same host,
            or a bad ``require``.
        InvalidRuntimeError: fewer hosts than ``require`` came up (the first such
            host's error; the others that failed are named in its notes); nothing is
            left connected.
        PathCreationError: ``working_dir`` could not be created on a host.
    """

    def __init__(
        self,
        runtimes: Sequence[Runtime] | None = None,
        hosts: str | Sequence[str] | None = None,
        working_dir: str | None = None,
        *,
        connection_kwargs: Mapping[str, Any] | None = None,
        supervisor: pykka.ActorRef[Any] | None = None,
        timeout: float = START_TIMEOUT,
        retain_tasks: int | None = None,
        require: Require = "all",
        keeper: bool = False,
    ) -> None:
        if bool(runtimes) == bool(hosts):
            raise UsageError("Either `runtimes` or `hosts` must be supplied. Not both or none.")
        host_list = as_hosts(hosts, "hosts")
        minimum = needed(require, len(host_list)) if host_list else 0
        self._setup(working_dir, connection_kwargs, retain_tasks, GroupTree(supervisor), keeper)
        try:
            if host_list:
                self._connect(host_list, timeout, minimum)
            else:
                self._adopt(list(runtimes or ()))
        except BaseException:
            self._abandon()
            raise
        log.info("group.created", group=self._tree.name, hosts=self.hosts)

    def _setup(
        self,
        working_dir: str | None,
        connection_kwargs: Mapping[str, Any] | None,
        retain_tasks: int | None,
        tree: GroupTree,
        keeper: bool = False,
    ) -> None:
        self._members = Members()
        self._ledger = TaskLedger()
        self._working_dir = working_dir
        self._connection_kwargs = dict(connection_kwargs or {})
        self._retain_tasks = retain_tasks
        self._keeper = keeper
        self._port_keys: list[tuple[str, str]] = []
        self._tree = tree
        self._lock = threading.Lock()
        self._closed = False
        self._starting: list[RuntimeHandle] = []  # every runtime started, for a cancel
        self._joiner = Joiner(tree.name, self._attempt, self._joined)

    @classmethod
    def _of(
        cls, runtimes: Mapping[str, Runtime], tree: GroupTree, working_dir: str | None = None
    ) -> RuntimeGroup:
        """A group of runtimes already up, under ``tree`` (the manager's groups)."""
        group = cls.__new__(cls)
        group._setup(working_dir, None, None, tree)
        for runtime in runtimes.values():
            group._members.add(runtime)
        return group

    @classmethod
    async def connect(
        cls,
        runtimes: Sequence[Runtime] | None = None,
        hosts: str | Sequence[str] | None = None,
        working_dir: str | None = None,
        **kwargs: Any,
    ) -> RuntimeGroup:
        """Create a group from asyncio without blocking the event loop (the same
        arguments and errors as ``RuntimeGroup(...)``).

        Cancelling the awaiting coroutine at any point abandons the connect: every
        runtime started for it is stopped (its agent and connection with it) and the
        group's supervisor too, before the ``CancelledError`` reaches the caller.
        """
        return await connect_group(cls, runtimes, hosts, working_dir, kwargs)

    def _adopt(self, runtimes: list[Runtime]) -> None:
        for runtime in runtimes:
            if not isinstance(runtime, Runtime):
                raise UsageError(f"runtimes must be Runtime objects, not {runtime!r}")
            self._members.add(runtime)
        if self._working_dir is not None:
            self._set_working_dir(self._members.all(), self._working_dir)

    @staticmethod
    def _set_working_dir(runtimes: Mapping[str, Runtime], working_dir: str) -> None:
        def move(runtime: Runtime) -> None:
            runtime.working_dir = working_dir

        on_threads(runtimes, move, what="creating the working directory").raise_first()

    def __repr__(self) -> str:
        return f"<RuntimeGroup {self._tree.name} hosts={self.hosts}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}: " + ", ".join(str(rt) for rt in self.runtimes)

    def _repr_html_(self) -> str:
        """A notebook's view: each host with its state, tasks and facts."""
        from actorcluster.groups.reprs import group_html

        return group_html(self)

    def __enter__(self) -> RuntimeGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # --- members --------------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        """The hosts of the group's runtimes, in order."""
        return list(self._members.all())

    def events(self, maxsize: int = observe.DEFAULT_BUFFER) -> observe.Subscription:
        """A subscription to the events of the group's runtimes (those in it now)."""
        return observe.subscribe(hosts=self.hosts, maxsize=maxsize)

    @property
    def runtimes(self) -> list[Runtime]:
        """The group's runtimes, in order."""
        return list(self._members.all().values())

    @property
    def runtime_count(self) -> int:
        """How many runtimes the group has."""
        return len(self._members)

    @property
    def supervisor(self) -> pykka.ActorRef[Any]:
        """The group's supervisor (the runtimes it connected run under it)."""
        return self._tree.ref

    @property
    def task_processes(self) -> list[ProcessHandle]:
        """The task processes of every runtime of the group."""
        return [handle for runtime in self.runtimes for handle in runtime.task_processes]

    def add_runtime(self, host: str | None = None, runtime: Runtime | None = None) -> None:
        """Add a runtime: connect ``host`` (under the group's supervisor, with the
        group's working directory and connection settings), or add ``runtime``.

        Raises:
            UsageError: both or neither given, or the host is in the group already.
            InvalidRuntimeError: the host cannot be used.
        """
        if host is not None and runtime is not None:
            raise UsageError(
                "Only host or runtime must be supplied. We refuse the temptation to guess."
            )
        if host is None and runtime is None:
            raise UsageError("Hostname or runtime must be supplied.")
        name = host if host is not None else getattr(runtime, "host", None)
        if isinstance(name, str) and self._members.contains(name):
            raise UsageError(f"a runtime of host {name} is already in the group")
        if runtime is None:
            assert host is not None
            runtime = Runtime(
                host,
                self._working_dir,
                self._connection_kwargs,
                supervisor=self._tree.ref,
                retain_tasks=self._retain_tasks,
                keeper=self._keeper,
            )
        elif not isinstance(runtime, Runtime):
            raise UsageError(f"runtime must be a Runtime, not {runtime!r}")
        elif self._working_dir is not None:
            runtime.working_dir = self._working_dir
        self._members.add(runtime)
        log.info("group.runtime.added", group=self._tree.name, host=runtime.host)

    def remove_runtime(self, host: str) -> None:
        """Take the host's runtime out of the group (it is not stopped). A host not in
        the group gives a warning, as in lazycluster."""
        if self._members.remove(host) is None:
            warnings.warn(f"Runtime {host} is not contained in the group!", stacklevel=2)
            return
        log.info("group.runtime.removed", group=self._tree.name, host=host)

    def contains_runtime(self, host: str) -> bool:
        """Whether the group has a runtime of that host."""
        return self._members.contains(host)

    def get_runtime(self, host: str | None = None) -> Runtime:
        """The runtime of ``host``, or (None) the one with the fewest tasks running now.

        Raises:
            UsageError: the host is not in the group, or the group is empty.
        """
        return self._members.least_busy() if host is None else self._members.get(host)

    def get_runtimes(
        self,
        include_hosts: str | Sequence[str] | None = None,
        exclude_hosts: str | Sequence[str] | None = None,
    ) -> dict[str, Runtime]:
        """The runtimes of ``include_hosts`` only, or all but ``exclude_hosts``, or all.

        Raises:
            UsageError: both given, or an included host is not in the group.
        """
        return self._members.select(include_hosts, exclude_hosts)

    # --- environment ----------------------------------------------------------------

    def set_env_variables(self, env_variables: dict[str, Any]) -> None:
        """Replace the environment variables of every runtime of the group."""
        if not isinstance(env_variables, dict):
            raise UsageError(f"env_variables must be a dict, not {type(env_variables).__name__}")
        for runtime in self.runtimes:
            runtime.env_variables = dict(env_variables)

    def add_env_variables(self, env_variables: dict[str, Any]) -> None:
        """Add or update environment variables on every runtime of the group."""
        if not isinstance(env_variables, dict):
            raise UsageError(f"env_variables must be a dict, not {type(env_variables).__name__}")
        for runtime in self.runtimes:
            runtime.add_env_variables(env_variables)

    # --- ports ----------------------------------------------------------------------

    def has_free_port(self, port: int, exclude_hosts: str | Sequence[str] | None = None) -> bool:
        """Whether ``port`` is free on every runtime (but those of ``exclude_hosts``);
        all hosts are asked at once.

        Raises:
            UsageError: a bad port or host list.
            HostUnreachableError: a host could not answer (names it).
        """
        return group_ports.has_free_port(self._members.select(exclude_hosts=exclude_hosts), port)

    def get_free_port(self, ports: list[int], enforce_check_on_localhost: bool = False) -> int:
        """The first of the ports free on every runtime (and here too with
        ``enforce_check_on_localhost``, unless ``localhost`` is in the group): one
        request per host for all the ports, all hosts at once.

        Raises:
            NoPortsLeftError: no port is free everywhere, or the list is empty.
            UsageError: ``ports`` is not a list of port numbers.
        """
        check_local = enforce_check_on_localhost and not self.contains_runtime(Runtime.LOCALHOST)
        return group_ports.get_free_port(self._members.all(), ports, check_local)

    def expose_port_to_runtimes(
        self,
        local_port: int,
        runtime_port: int | list[int] | None = None,
        exclude_hosts: str | Sequence[str] | None = None,
    ) -> int:
        """Expose ``local_port`` here on every runtime (but ``exclude_hosts``): their
        ``runtime_port`` reaches it (remote forwarding, ``ssh -R``).

        Args:
            local_port: the port here.
            runtime_port: the port on the runtimes; a list: the first free on all of
                them; None: ``local_port``.
            exclude_hosts: runtimes that get no tunnel.

        Returns:
            The runtime port used.

        Raises:
            PortInUseError: the single port given is taken on a runtime.
            NoPortsLeftError: no port of the list is free on every runtime.
            ActorClusterError: a host could not open its tunnel (names it; no tunnel
                is left open).
        """
        runtimes = self._members.select(exclude_hosts=exclude_hosts)
        port, keys = group_ports.expose_to_runtimes(runtimes, local_port, runtime_port)
        self._port_keys += keys.items()
        return port

    def expose_port_from_runtime_to_group(
        self, host: str, runtime_port: int, group_port: int | list[int] | None = None
    ) -> int:
        """Make ``runtime_port`` of ``host`` reachable at ``group_port`` on every other
        runtime, through this machine (the hub): a local forward from the host to a
        port here, and a remote forward from every other runtime to that port.

        Returns:
            The group port used.

        Raises:
            UsageError: the host is not in the group.
            PortInUseError: the single group port given is taken on another runtime.
            NoPortsLeftError: no group port listed is free on all the others.
        """
        source = self._members.get(host)
        others = self._members.select(exclude_hosts=[host])
        port, keys = group_ports.expose_from_runtime(source, others, runtime_port, group_port)
        self._port_keys += keys.items()
        return port

    # --- information ----------------------------------------------------------------

    def fill_runtime_info_buffers_async(self) -> None:
        """Read every host's facts (``Runtime.info``) at once and keep them."""
        on_threads(self._members.all(), lambda runtime: runtime.info, what="reading facts")

    def print_hosts(self) -> None:
        """Print the group's hosts, their state and working directory."""
        rows = [
            (host, runtime.handle.state, runtime.working_dir)
            for host, runtime in self._members.all().items()
        ]
        print_table(f"{self.runtime_count} runtime(s)", ("host", "state", "working dir"), rows)

    def print_runtime_info(self) -> None:
        """Print every host's facts as a table (all hosts are asked at once)."""
        outcomes = on_threads(self._members.all(), lambda rt: rt.info, what="reading facts")
        rows: list[tuple[object, ...]] = []
        for host, runtime in self._members.all().items():
            if host in outcomes.values:
                info = outcomes.values[host]
                gpus = ", ".join(
                    str(gpu.get("name", gpu)) if isinstance(gpu, dict) else str(gpu)
                    for gpu in info.get("gpus") or ()
                )
                rows.append(
                    (
                        host,
                        info.get("os"),
                        info.get("cpu_cores"),
                        runtime.memory_in_mb,
                        info.get("python_version"),
                        gpus or "none",
                    )
                )
            else:
                rows.append((host, f"unavailable: {outcomes.errors.get(host)}", "", "", "", ""))
        columns = ("host", "os", "cpu cores", "memory (MB)", "python", "gpus")
        print_table(f"{self.runtime_count} runtime(s)", columns, rows)

    # --- lifecycle ------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop every runtime of the group (all at once: their tasks, tunnels, agents
        and connections), then the group's supervisor once no runtime it started is
        left (one taken out with :meth:`remove_runtime` runs on until its cleanup)."""
        with self._lock:
            self._closed = True
        self._joiner.stop()  # a host being connected in the background is abandoned
        outcomes = on_threads(self._members.all(), Runtime.cleanup, what="stopping")
        for host, error in outcomes.errors.items():
            log.info("group.cleanup.failed", group=self._tree.name, host=host, error=str(error))
        self._port_keys.clear()
        if not any(child.alive for child in self._tree.children()):
            self._tree.stop()
        log.info("group.stopped", group=self._tree.name)

    async def join_async(self) -> None:
        """:meth:`join` from asyncio, without blocking the event loop."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        await asyncio.to_thread(self.join)

    async def cleanup_async(self) -> None:
        """:meth:`cleanup` from asyncio, without blocking the event loop."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        await asyncio.to_thread(self.cleanup)
