"""What a launcher starts becomes the cluster's: :class:`AdoptingGroup`.

While the cluster runs a launcher's ``start()`` (lazycluster's contract: it uses
``self._group``), the launcher's group is an :class:`AdoptingGroup` standing for the
real one. Everything passes through, except what the cluster must own:

* ``execute_task(task, host, omit_on_join=True)``: the task's commands become a
  supervised process of the cluster's coordinator (the master's, or a worker's),
  re-sent to the same host with the same ports when it exits. Steps before its last
  commands (files sent, functions run) run once, first, as an ordinary task.
* ``get_free_port``/``has_free_port``: the cluster's port pool, so a launcher's ports
  are the cluster's (no part of it ever gets another's port).
* ``expose_port_to_runtimes``/``expose_port_from_runtime_to_group``: tunnels the
  cluster closes at cleanup, skipped where a host shares this machine's loopback (it
  reaches the port already), and opened once per port (a relaunch asks again).

A local ``subprocess.Popen`` the launcher stores in ``_process`` is adopted after its
``start()`` returns (see :mod:`actorcluster.cluster.local_popen`).
"""

from __future__ import annotations

import subprocess
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from actorcluster._logging import get_logger
from actorcluster.cluster.coordinator import MASTER
from actorcluster.cluster.exposure import expose_here_to, expose_to_group
from actorcluster.cluster.local_popen import stop_popen
from actorcluster.errors import MasterStartError, NoPortsLeftError
from actorcluster.messages.steps import RunCommand
from actorcluster.runtimes.task_ops import with_steps

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from actorcluster.cluster.context import ClusterContext
    from actorcluster.cluster.launchers import MasterLauncher, WorkerLauncher
    from actorcluster.groups import RuntimeGroup
    from actorcluster.runtimes import RuntimeTask
    from actorcluster.runtimes.supervised import SupervisedProcess

__all__ = ["AdoptingGroup", "adopt_master", "adopt_workers", "task_command"]

log = get_logger(__name__)
_T = TypeVar("_T")


def task_command(task: RuntimeTask) -> tuple[RuntimeTask | None, str | None]:
    """Split ``task``: the steps to run once first (None if none), and its trailing
    commands as one shell command (None if it does not end with commands)."""
    steps = list(task.build().steps)
    tail = len(steps)
    while tail > 0 and isinstance(steps[tail - 1], RunCommand):
        tail -= 1
    commands = [step.command for step in steps[tail:] if isinstance(step, RunCommand)]
    prefix = with_steps(task, steps[:tail]) if tail > 0 else None
    if not commands:
        return prefix, None
    if len(commands) == 1:
        return prefix, commands[0]
    return prefix, " && ".join(f"{{ {command}\n}}" for command in commands)


class AdoptingGroup:
    """The real group, for one launcher's ``start()`` (see the module docstring).

    Args:
        group: the real group.
        context: the cluster's machinery (coordinator, pool, tunnels).
        role: :data:`~actorcluster.cluster.coordinator.MASTER` or ``"worker"``.
        processes: where adopted workers' handles go (the launcher's), by child id.
    """

    def __init__(
        self,
        group: RuntimeGroup,
        context: ClusterContext,
        role: str,
        processes: dict[str, SupervisedProcess] | None = None,
    ) -> None:
        self._real = group
        self._context = context
        self._role = role
        self._processes = processes if processes is not None else {}
        self._lock = threading.Lock()
        self.adopted: list[SupervisedProcess] = []
        """What this start adopted, in order."""

    def __repr__(self) -> str:
        return f"<AdoptingGroup {self._context.name} {self._role} of {self._real!r}>"

    def settle(self) -> None:
        """The launcher's start is over: ports reserved for it and unused are plain
        cluster ports again."""
        self._context.pool.settle()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __str__(self) -> str:
        return str(self._real)

    # --- ports: the cluster's pool ------------------------------------------------------

    def get_free_port(self, ports: list[int], enforce_check_on_localhost: bool = False) -> int:
        """The first of ``ports`` free everywhere (and here); the cluster's from now on.

        Raises:
            NoPortsLeftError: none is.
        """
        try:
            return self._context.pool.take(list(ports), 1)[0]
        except NoPortsLeftError:
            raise NoPortsLeftError(list(ports), "the group") from None

    def has_free_port(self, port: int, exclude_hosts: str | Sequence[str] | None = None) -> bool:
        """Whether ``port`` is free in the group and not the cluster's already (a port
        the cluster handed to this launcher, or one its process held before a
        restart, counts as free)."""
        pool = self._context.pool
        if pool.is_reserved(port):
            return True
        if port in pool.taken:
            return False
        return bool(self._real.has_free_port(port, exclude_hosts))

    # --- tasks: supervised ------------------------------------------------------------

    def execute_task(  # noqa: PLR0917 (lazycluster's signature)
        self,
        task: RuntimeTask,
        host: str | None = None,
        broadcast: bool = False,
        execute_async: bool = True,
        omit_on_join: bool = False,
        debug: bool = False,
        **kwargs: Any,
    ) -> Any:
        """As the group's; a task for one host with ``omit_on_join`` (a long-running
        cluster process) becomes a supervised process of the cluster instead."""
        if not omit_on_join or broadcast or kwargs:
            return self._real.execute_task(
                task, host, broadcast, execute_async, omit_on_join, debug, **kwargs
            )
        prefix, command = task_command(task)
        if command is None:
            return self._real.execute_task(task, host, False, execute_async, True, debug)
        runtime = self._real.get_runtime(host)
        if prefix is not None:  # files and functions before the commands: once, first
            runtime.execute_task(prefix, execute_async=False, debug=debug)
        env = {**runtime.env_variables, **task.env_variables}
        with self._lock:  # a master launcher's further tasks are kept up as workers are
            first = self._role == MASTER and not self.adopted
            child_id = MASTER if first else self._context.next_worker_id()
        process, _ = self._context.start_process(
            child_id, runtime, command, debug=debug, env=env, name=task.name
        )
        self._processes[child_id] = process
        self.adopted.append(process)
        log.debug("cluster.task.adopted", cluster=self._context.name, task=task.name, host=host)
        return task

    # --- tunnels: the cluster's, once per port ------------------------------------------

    def expose_port_to_runtimes(
        self,
        local_port: int,
        runtime_port: int | list[int] | None = None,
        exclude_hosts: str | Sequence[str] | None = None,
    ) -> int:
        """``local_port`` here reachable on every runtime (but ``exclude_hosts``) at
        ``runtime_port`` (default: the same); returns the runtime port."""
        if isinstance(runtime_port, list):
            port = self.get_free_port(runtime_port)
        else:
            port = local_port if runtime_port is None else runtime_port
        excluded = {exclude_hosts} if isinstance(exclude_hosts, str) else set(exclude_hosts or ())
        hosts = [host for host in self._real.hosts if host not in excluded]
        expose_here_to(self._context, hosts, local_port, port)
        return port

    def expose_port_from_runtime_to_group(
        self, host: str, runtime_port: int, group_port: int | list[int] | None = None
    ) -> int:
        """``runtime_port`` of ``host`` reachable here and on every other runtime at
        ``group_port`` (default: the same); returns the group port."""
        if isinstance(group_port, list):
            port = self.get_free_port(group_port)
        else:
            port = runtime_port if group_port is None else group_port
        expose_to_group(self._context, host, runtime_port, port)
        return port


def _started(launcher: Any, group: AdoptingGroup, call: Callable[[], _T]) -> _T:
    """Run ``call`` (the launcher's ``start``) with ``group`` as the launcher's group."""
    real = launcher._group
    launcher._group = group
    try:
        return call()
    finally:
        launcher._group = real
        group.settle()


def adopt_master(
    context: ClusterContext,
    launcher: MasterLauncher,
    ports: list[int] | int,
    timeout: int,
    debug: bool,
) -> list[int]:
    """Run the master launcher's ``start`` so that what it starts is the cluster's:
    a task becomes the supervised master process, a ``Popen`` it stores in ``_process``
    is watched and, on exit, started again by calling ``start`` for the same port."""
    group = AdoptingGroup(launcher._group, context, MASTER)
    left = _started(launcher, group, lambda: launcher.start(ports, timeout, debug))
    popen = launcher._process
    if isinstance(popen, subprocess.Popen) and launcher._port is not None:
        port = launcher._port
        context.adopt_popen(popen, lambda: _relaunch(context, launcher, port, timeout, debug))
        _give_stop(popen, context)
    return left


def _give_stop(popen: subprocess.Popen[Any], context: ClusterContext) -> None:
    """``popen.stop()``: stop it for good (``terminate()`` alone ends this incarnation,
    and the cluster starts another), as a supervised process's ``stop()``."""

    def stop() -> None:
        context.coordinator.stop_processes([MASTER])
        if popen.poll() is None:
            stop_popen(popen)

    setattr(popen, "stop", stop)  # noqa: B010 (an attribute Popen does not declare)


def _relaunch(
    context: ClusterContext, launcher: MasterLauncher, port: int, timeout: int, debug: bool
) -> subprocess.Popen[Any]:
    """The master's ``Popen`` exited: the launcher's ``start`` again, same port."""
    context.pool.reserve(port)
    group = AdoptingGroup(launcher._group, context, MASTER)
    launcher._process = None
    _started(launcher, group, lambda: launcher.start(port, timeout, debug))
    popen: Any = launcher.process
    if not isinstance(popen, subprocess.Popen):
        raise MasterStartError(
            launcher._host or "localhost", port, "its launcher's start() stored no Popen again"
        )
    _give_stop(popen, context)
    return popen


def adopt_workers(
    context: ClusterContext,
    launcher: WorkerLauncher,
    count: int,
    master_port: int,
    ports: list[int],
    *,
    debug: bool,
) -> list[int]:
    """Run the worker launcher's ``start`` so that the tasks it sends are supervised
    workers of the cluster; returns the ports it left."""
    group = AdoptingGroup(launcher._group, context, "worker", launcher._processes)
    left = _started(launcher, group, lambda: launcher.start(count, master_port, ports, debug))
    if launcher.workers_reconnect:  # the coordinator's default is False: no ask then
        context.coordinator.ask("set_workers_reconnect", True)
    return left
