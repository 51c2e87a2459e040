"""``actorcluster put SRC... HOST:DST`` and ``get HOST:SRC... [DST]``: files and folders.

Paths on the host are relative to the login's home; HOST may be a pattern ('gpu-*') or
a comma-separated list, and the transfer then happens with every host it names. Folders
travel whole (as one tar stream) and land all or nothing. Several sources move at once,
over one connection per host. A progress bar per source (files and bytes) shows on a
terminal, none in a pipe; a summary line per source goes to stderr.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import TYPE_CHECKING

import click

from actorcluster.cli.console import error, note
from actorcluster.cli.exits import code_for
from actorcluster.cli.progress import Bars, local_size, transfer_bars
from actorcluster.cli.settings import Settings, cleanup_all, connect_one
from actorcluster.cli.targets import resolve_hosts
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.runtimes import RuntimeTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.runtimes import Runtime

__all__ = ["get", "put", "split_remote"]

_STAT_TIMEOUT = 10.0
"""Seconds asking a host for a file's size (its progress bar's total) may take."""


def split_remote(spec: str) -> tuple[str, str] | None:
    """``(host, path)`` of ``HOST:PATH``; None for a local path (no colon before the
    first slash, as scp decides)."""
    host, colon, path = spec.partition(":")
    if not colon or not host or "/" in host:
        return None
    return host, path


def _size(size: int) -> str:
    """``size`` bytes in words (``3.4 MB``)."""
    if size < 1000:
        return f"{size} B"
    value, unit = size / 1000, "KB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


def _under(target: str, source: str, *, local: bool) -> str | None:
    """Where ``source`` lands given ``target``: inside it under its own name when it
    ends with ``/`` (or, ``local``, is a folder here); ``""`` (the home): None; else
    ``target`` itself."""
    if not target:
        return None
    name = posixpath.basename(source.rstrip("/")) or source
    if target.endswith("/"):
        return target + name
    if local and os.path.isdir(target):
        return os.path.join(target, name)
    return target


Plan = list[tuple[RuntimeTask, str]]
"""One host's transfers: each task, and the summary line said when it succeeds."""


def _run_all(runtime: Runtime, tasks: Plan) -> None:
    """Start every transfer at once, wait for all, then raise the first failure."""
    _run_everywhere({runtime: tasks})


def _run_everywhere(plans: dict[Runtime, Plan]) -> None:
    """Start every host's transfers at once, wait for all, then raise the first failure."""
    started = time.monotonic()
    for runtime, tasks in plans.items():
        for task, _ in tasks:
            runtime.execute_task(task)
    failure: BaseException | None = None
    for tasks in plans.values():
        for task, summary in tasks:
            assert task.future is not None
            problem = task.future.exception()
            if problem is None:
                note(f"{summary} in {time.monotonic() - started:.1f} s")
            elif failure is None:
                failure = problem
    if failure is not None:
        raise failure


def _on_hosts(settings: Settings, hosts: list[str], plan: Callable[[Runtime, Bars], Plan]) -> int:
    """Connect ``hosts`` (at once), make each one's transfers with ``plan``, run them
    all; one host: its failure is raised; several: each host that cannot be reached is
    reported, and the exit code is the worst of theirs (a failed transfer is raised)."""
    if len(hosts) == 1:
        with connect_one(settings, hosts[0]) as runtime, transfer_bars() as bars:
            _run_all(runtime, plan(runtime, bars))
        return 0
    connected = settings.connect(hosts)
    try:
        for host, problem in connected.errors.items():
            error(f"{host}: {problem}" if host not in str(problem) else str(problem))
        with transfer_bars() as bars:
            plans = {runtime: plan(runtime, bars) for runtime in connected.runtimes.values()}
            _run_everywhere(plans)
    finally:
        cleanup_all(connected.runtimes.values())
    return max((int(code_for(problem)) for problem in connected.errors.values()), default=0)


@click.command(short_help="Send files and folders to hosts.")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.argument("target", metavar="HOST:DST")
@click.pass_obj
def put(settings: Settings, sources: tuple[str, ...], target: str) -> int:
    """Send local files or folders to a host: put SRC... HOST:DST.

    HOST is a name, a comma-separated list or a pattern ('gpu-*': every host of the
    ssh_config it matches gets the files). DST is relative to the login's home. A
    source lands inside DST under its own name when DST ends with '/' (HOST: alone is
    the home); otherwise it becomes DST (a file onto an existing folder goes inside
    it; a folder is merged into an existing one). With several sources, DST is a folder.
    """
    remote = split_remote(target)
    if remote is None:
        raise UsageError(f"the target {target!r} is not HOST:PATH (put SRC... HOST:DST)")
    host_word, destination = remote
    for source in sources:
        if split_remote(source) is not None:
            raise UsageError(f"put sends local paths; {source!r} is on a host (use get)")
        if not os.path.lexists(source):
            raise UsageError(f"no such local file or folder: {source!r}")
    if len(sources) > 1 and destination and not destination.endswith("/"):
        destination += "/"
    hosts = resolve_hosts([host_word], settings.ssh_config)
    sizes = {source: local_size(source) for source in sources}

    def plan(runtime: Runtime, bars: Bars) -> Plan:
        tasks = []
        for source in sources:
            files, size = sizes[source]
            what = f"{source} ({files} files, {_size(size)})" if os.path.isdir(source) else source
            remote_path = _under(destination, source, local=False)
            shown = f"{runtime.host}:{remote_path or '~'}"
            callback = bars.add(f"{source} -> {shown}", size)
            task = RuntimeTask(f"put-{source}").send_file(source, remote_path, progress=callback)
            tasks.append((task, f"sent {what} to {shown}"))
        return tasks

    return _on_hosts(settings, hosts, plan)


@click.command(short_help="Fetch files and folders from hosts.")
@click.argument("sources", nargs=-1, required=True, metavar="HOST:SRC...")
@click.argument("target", required=False, metavar="[DST]")
@click.pass_obj
def get(settings: Settings, sources: tuple[str, ...], target: str | None) -> int:
    """Fetch files or folders from a host: get HOST:SRC... [DST].

    HOST is a name, a comma-separated list or a pattern ('gpu-*'); from several
    hosts, each one's files land in DST/HOST/. SRC is relative to the login's home. A
    source lands inside DST under its own name when DST is a folder (default: the
    current folder); otherwise it becomes DST.
    """
    if target is not None and split_remote(target) is not None:
        sources, target = (*sources, target), None
    remotes = [split_remote(source) for source in sources]
    words = {remote[0] for remote in remotes if remote is not None}
    if None in remotes or len(words) != 1:
        raise UsageError("get takes paths on one host (or pattern): get HOST:SRC... [DST]")
    paths = [remote[1] for remote in remotes if remote is not None]
    if any(not path for path in paths):
        raise UsageError("get needs a path after HOST: (get HOST:SRC... [DST])")
    hosts = resolve_hosts([words.pop()], settings.ssh_config)
    local = target if target is not None else "."
    several = len(hosts) > 1
    if (several or len(paths) > 1) and not os.path.isdir(local):
        raise UsageError(f"with several sources, DST must be an existing folder: {local!r}")

    def plan(runtime: Runtime, bars: Bars) -> Plan:
        host = runtime.host
        folder = os.path.join(local, host) if several else local
        if several:
            os.makedirs(folder, exist_ok=True)
        tasks = []
        for path in paths:
            landing = _under(folder, path, local=True) or folder
            size = _remote_size(runtime, path) if bars.shown else None
            callback = bars.add(f"{host}:{path} -> {landing}", size)
            task = RuntimeTask(f"get-{path}").get_file(path, landing, progress=callback)
            tasks.append((task, f"fetched {host}:{path} to {landing}"))
        return tasks

    return _on_hosts(settings, hosts, plan)


def _remote_size(runtime: Runtime, path: str) -> int | None:
    """The size of a file on the host, for its bar's total (None: a folder, or not known)."""
    try:
        info = runtime.handle.client().stat(path).result(_STAT_TIMEOUT)
    except ActorClusterError:
        return None  # the transfer itself says what is wrong
    return info.size if info is not None and not info.is_dir else None
