"""``actorcluster dask HOST... --workers N``: a supervised Dask cluster until Ctrl-C.

The scheduler and the workers are those of :class:`actorcluster.cluster.dask_cluster.DaskCluster`
on a group of the hosts; its supervision keeps them running (a worker that dies is
restarted). The command prints the scheduler's address and the dashboard's link on
stdout, reports changes in the number of workers on stderr, and on Ctrl-C (or SIGTERM)
stops the cluster, cleans every host up and says so.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from actorcluster.cli.console import note
from actorcluster.cli.exits import ExitCode
from actorcluster.cli.targets import resolve_hosts
from actorcluster.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from actorcluster.cli.settings import Settings

__all__ = ["dask"]

_WATCH_INTERVAL = 2.0
"""Seconds between looks at the number of workers."""
_CLIENT_TIMEOUT = 30
"""Seconds the Dask client may take to connect to the scheduler."""


def _cluster_class() -> Any:
    try:  # imported by name: the cluster module may be missing, or 'distributed'
        module = importlib.import_module("actorcluster.cluster.dask_cluster")
    except ImportError as exc:
        raise UsageError(
            f"Dask clusters are not available here ({exc}); they need the 'distributed' "
            "package: pip install distributed"
        ) from None
    return module.DaskCluster


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the cluster as Ctrl-C does (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_count(client: Any) -> int | None:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # a scheduler busy restarting answers later
        return None


def _watch(client: Any, wanted: int) -> None:
    """Report changes in the number of workers until interrupted."""
    last: int | None = wanted
    while True:
        time.sleep(_WATCH_INTERVAL)
        count = _worker_count(client)
        if count is not None and count != last:
            note(f"workers: {count} of {wanted} up")
            last = count


def _announce(client: Any, hosts: list[str], workers: int, seconds: float) -> None:
    print(f"scheduler: {client.scheduler.address}")
    print(f"dashboard: {client.dashboard_link}")
    print(f"workers: {workers} on {', '.join(hosts)}", flush=True)
    note(f"cluster up in {seconds:.1f} s; press Ctrl-C to stop it and clean up")


@click.command(short_help="A supervised Dask cluster until Ctrl-C.")
@click.argument("words", nargs=-1, metavar="HOST...")
@click.option("--all", "every", is_flag=True, help="Every Host of the ssh_config.")
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="How many workers, spread over the hosts (default: one per host).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="The scheduler's port.")
@click.pass_obj
def dask(
    settings: Settings, words: tuple[str, ...], every: bool, workers: int | None, port: int | None
) -> int:
    """Start a supervised Dask cluster on the hosts; keep it up until Ctrl-C.

    Prints the scheduler's address and the dashboard's link. Workers that die are
    restarted. Ctrl-C (or SIGTERM) stops the scheduler and every worker and cleans up
    every host; the exit code is then 0.
    """
    from actorcluster.groups import RuntimeGroup

    cluster_class = _cluster_class()
    hosts = resolve_hosts(words, settings.ssh_config, every=every)
    wanted = workers or len(hosts)
    started = time.monotonic()
    up = False
    with _sigterm_interrupts():
        group = RuntimeGroup(
            hosts=hosts,
            connection_kwargs=settings.connection_kwargs(),
            timeout=settings.connect_timeout,
        )
        cluster: Any = None
        client: Any = None
        try:
            cluster = cluster_class(group)
            cluster.start(worker_count=wanted, master_port=port)
            client = cluster.get_client(timeout=_CLIENT_TIMEOUT)
            _announce(client, hosts, wanted, time.monotonic() - started)
            up = True
            _watch(client, wanted)
        except KeyboardInterrupt:
            pass
        finally:
            note("stopping the cluster...")
            with contextlib.suppress(Exception):
                if client is not None:
                    client.close()
            if cluster is not None:
                cluster.cleanup()
            group.cleanup()
            note(f"stopped the scheduler and {wanted} worker(s); cleaned up {', '.join(hosts)}")
    sys.stdout.flush()
    return int(ExitCode.OK if up else ExitCode.INTERRUPTED)
