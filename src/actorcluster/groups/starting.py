"""Connecting a group's hosts: :class:`GroupStart`, the part of
:class:`~actorcluster.groups.RuntimeGroup` that brings its runtimes up (all at once,
or from asyncio step by step so that a cancel undoes exactly what exists), admits
those that came up, and hands the others (``require`` allowing) to the
:class:`~actorcluster.groups.joining.Joiner`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pykka

from actorcluster._aio import outcome, settle
from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.groups.connecting import (
    connect_once,
    errors_note,
    finish_start,
    needed,
    start_handle,
)
from actorcluster.groups.fanout import on_threads
from actorcluster.groups.members import as_hosts
from actorcluster.groups.tree import GroupTree
from actorcluster.runtimes import Runtime
from actorcluster.runtimes.handle import START_TIMEOUT

if TYPE_CHECKING:
    import threading
    from collections.abc import Sequence
    from typing import Any

    from actorcluster.groups.group import RuntimeGroup
    from actorcluster.groups.joining import Joiner
    from actorcluster.groups.members import Members
    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = ["GroupStart", "connect_group"]

log = get_logger(__name__)


class GroupStart:
    """Bringing a group's runtimes up (a mixin of ``RuntimeGroup``, which provides the
    members, the settings and the tree)."""

    _members: Members
    _tree: GroupTree
    _joiner: Joiner
    _lock: threading.Lock
    _closed: bool
    _starting: list[RuntimeHandle]
    _working_dir: str | None
    _connection_kwargs: dict[str, Any]
    _retain_tasks: int | None
    _keeper: bool

    @property
    def pending_hosts(self) -> list[str]:
        """Hosts that were down when the group started (``require="any"`` or a
        number), still being connected in the background; each joins the group
        (``hosts``) once it is reachable."""
        return self._joiner.pending

    def _connect(self, hosts: list[str], timeout: float, minimum: int) -> None:
        connected = Runtime.connect_many(
            hosts,
            self._working_dir,
            self._connection_kwargs,
            supervisor=self._tree.ref,
            retain_tasks=self._retain_tasks,
            timeout=timeout,
            keeper=self._keeper,
        )
        self._admit(hosts, connected.runtimes, dict(connected.errors), minimum)

    async def _connect_async(self, hosts: list[str], timeout: float, minimum: int) -> None:
        """:meth:`_connect` from asyncio: each blocking step on a thread, through
        :func:`settle` (a cancel waits for the step, then the caller abandons)."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        handles, errors = await settle(asyncio.to_thread(self._start_all, hosts))
        waits = [asyncio.ensure_future(outcome(h.startup)) for h in handles.values()]
        try:
            if waits:
                await asyncio.wait(waits, timeout=timeout)
        finally:
            for wait in waits:
                wait.cancel()
        await settle(asyncio.to_thread(self._finish_all, hosts, handles, errors, minimum, timeout))

    def _start_all(
        self, hosts: list[str]
    ) -> tuple[dict[str, RuntimeHandle], dict[str, ActorClusterError]]:
        handles: dict[str, RuntimeHandle] = {}
        errors: dict[str, ActorClusterError] = {}
        for host in dict.fromkeys(hosts):
            try:
                handle = start_handle(
                    host,
                    self._working_dir,
                    self._connection_kwargs,
                    self._tree.ref,
                    keeper=self._keeper,
                )
                self._starting.append(handle)
                handle.start_async()
            except ActorClusterError as error:
                errors[host] = error
            else:
                handles[host] = handle
        return handles, errors

    def _finish_all(
        self,
        hosts: list[str],
        handles: dict[str, RuntimeHandle],
        errors: dict[str, ActorClusterError],
        minimum: int,
        timeout: float,
    ) -> None:
        runtimes: dict[str, Runtime] = {}
        for host, handle in handles.items():
            try:
                working_dir, retain = self._working_dir, self._retain_tasks
                runtimes[host] = finish_start(handle, working_dir, retain, timeout)
            except ActorClusterError as error:
                errors[host] = error
        self._admit(hosts, runtimes, {h: errors[h] for h in hosts if h in errors}, minimum)

    def _admit(
        self,
        hosts: list[str],
        runtimes: dict[str, Runtime],
        errors: dict[str, ActorClusterError],
        minimum: int,
    ) -> None:
        """Make the runtimes that came up members; with fewer than ``minimum``, stop
        them and raise the first host's error; else keep connecting the others in the
        background."""
        for host in hosts:
            if host in runtimes and not self._members.contains(host):
                self._members.add(runtimes[host])
        if not errors:
            return
        if len(runtimes) < minimum:
            on_threads(runtimes, Runtime.cleanup, what="stopping")
            raise errors_note(list(errors.values()))
        for host, error in errors.items():
            self._joiner.add(host, error)

    def _attempt(self, host: str, abandon: threading.Event) -> Runtime | None:
        """One background try to connect a pending host (see :class:`Joiner`); None,
        and no more tries, once the group's supervisor is gone (its tree was stopped)."""
        try:
            return connect_once(
                host,
                abandon,
                working_dir=self._working_dir,
                connection_kwargs=self._connection_kwargs,
                supervisor=self._tree.ref,
                retain_tasks=self._retain_tasks,
                keeper=self._keeper,
            )
        except pykka.ActorDeadError:
            with self._lock:
                self._closed = True
            self._joiner.stop()
            return None

    def _joined(self, runtime: Runtime) -> None:
        """A pending host came up: it becomes a member (unless the group is stopping)."""
        with self._lock:
            if not self._closed:
                self._members.add(runtime)
                return
        runtime.cleanup()

    def _abandon(self) -> None:
        """Undo a start that failed or was cancelled: stop every runtime started for
        the group, then its supervisor."""
        with self._lock:
            self._closed = True
        self._joiner.stop()
        self._tree.stop()
        for handle in self._starting:
            handle.stop()  # its subtree is gone with the tree: this closes its waiters


async def connect_group(
    cls: type[RuntimeGroup],
    runtimes: Sequence[Runtime] | None,
    hosts: str | Sequence[str] | None,
    working_dir: str | None,
    kwargs: dict[str, Any],
) -> RuntimeGroup:
    """:meth:`RuntimeGroup.connect <actorcluster.groups.RuntimeGroup.connect>`: each
    blocking step on a thread, through :func:`settle`; on a cancel or a failure,
    everything started for the group is stopped before the error is raised."""
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    if runtimes or not hosts:
        return await settle(
            asyncio.to_thread(cls, runtimes, hosts, working_dir, **kwargs), undo=cls._abandon
        )
    timeout = kwargs.pop("timeout", START_TIMEOUT)
    minimum = needed(kwargs.pop("require", "all"), len(as_hosts(hosts, "hosts")))
    supervisor = kwargs.pop("supervisor", None)
    connection_kwargs = kwargs.pop("connection_kwargs", None)
    retain_tasks = kwargs.pop("retain_tasks", None)
    keeper = kwargs.pop("keeper", False)
    if kwargs:
        raise UsageError(f"RuntimeGroup.connect() got unexpected arguments: {sorted(kwargs)}")
    group = cls.__new__(cls)

    def prepare() -> RuntimeGroup:
        group._setup(working_dir, connection_kwargs, retain_tasks, GroupTree(supervisor), keeper)
        return group

    await settle(asyncio.to_thread(prepare), undo=cls._abandon)
    try:
        await group._connect_async(as_hosts(hosts, "hosts"), timeout, minimum)
    except BaseException:
        await settle(asyncio.to_thread(group._abandon))
        raise
    log.info("group.created", group=group._tree.name, hosts=group.hosts)
    return group
