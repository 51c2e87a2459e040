"""``actorcluster dask HOST... --workers N``: a supervised Dask cluster until Ctrl-C.

The scheduler and the workers are those of
:class:`~actorcluster.cluster.dask_cluster.DaskCluster` on a group of the hosts; its
supervision keeps them running (a worker that dies is restarted). The command prints
the scheduler's address and the dashboard's link on stdout, reports changes in the
number of workers on stderr, and on Ctrl-C (or SIGTERM) stops the cluster, cleans every
host up and says so. A cluster that fails (its scheduler lost, its workers failing past
their restart intensity) ends the command with the error.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from actorcluster.cli.console import note
from actorcluster.cli.exits import ExitCode
from actorcluster.cli.targets import resolve_hosts
from actorcluster.cluster.dask_cluster import DaskCluster, RoundRobinLauncher
from actorcluster.groups import RuntimeGroup

if TYPE_CHECKING:
    from collections.abc import Iterator

    from actorcluster.cli.settings import Settings

__all__ = ["dask"]

_WATCH_INTERVAL = 2.0
"""Seconds between looks at the cluster and its number of workers."""
_CLIENT_TIMEOUT = 30
"""Seconds the Dask client may take to connect to the scheduler."""


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


def _watch(cluster: DaskCluster, client: Any, wanted: int) -> None:
    """Report changes in the number of workers until interrupted.

    Raises:
        MasterLostError, SupervisorGaveUpError: the cluster failed.
    """
    last: int | None = wanted
    while True:
        cluster.wait(timeout=_WATCH_INTERVAL)  # returns quietly while it is well
        count = _worker_count(client)
        if count is not None and count != last:
            note(f"workers: {count} of {wanted} up")
            last = count


def _announce(cluster: DaskCluster, hosts: list[str], workers: int, seconds: float) -> None:
    dashboard = cluster.dashboard_link or "none (install bokeh for the dashboard)"
    print(f"scheduler: {cluster.scheduler_address}")
    print(f"dashboard: {dashboard}")
    if cluster.tls_files is not None:  # TLS: a client needs the cluster's certificate
        cert, key = cluster.tls_files
        print(f"tls: tls_ca_file={cert} tls_client_cert={cert} tls_client_key={key}")
    print(f"workers: {workers} on {', '.join(hosts)}", flush=True)
    note(f"cluster up in {seconds:.1f} s; press Ctrl-C to stop it and clean up")


def _stop(cluster: DaskCluster | None, group: RuntimeGroup, client: Any, summary: str) -> None:
    """Close the client, stop the cluster (workers, scheduler, tunnels, the group's
    runtimes), and say so."""
    note("stopping the cluster...")
    with contextlib.suppress(Exception):
        if client is not None:
            client.close()
    if cluster is not None:
        cluster.cleanup()  # the group's runtimes too
    group.cleanup()
    note(summary)


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
@click.option(
    "--python",
    metavar="PATH",
    default=None,
    help="The workers' interpreter on the hosts (default: python3.X, else python3); "
    "the scheduler runs here with this interpreter.",
)
@click.pass_obj
def dask(
    settings: Settings,
    words: tuple[str, ...],
    *,
    every: bool,
    workers: int | None,
    port: int | None,
    python: str | None,
) -> int:
    """Start a supervised Dask cluster on the hosts; keep it up until Ctrl-C.

    The scheduler runs here, the workers on the hosts (round robin), reached through
    the hosts' SSH connections. Prints the scheduler's address and the dashboard's
    link. Workers that die are restarted. Ctrl-C (or SIGTERM) stops the scheduler and
    every worker and cleans up every host; the exit code is then 0.
    """
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
        cluster: DaskCluster | None = None
        client: Any = None
        summary = f"stopped the scheduler and {wanted} worker(s); cleaned up {', '.join(hosts)}"
        try:
            # --python is the workers' (on the hosts); the scheduler runs here, with ours.
            launcher = RoundRobinLauncher(group, python=python)
            cluster = DaskCluster(group, worker_launcher=launcher)
            cluster.start(worker_count=wanted, master_port=port)
            client = cluster.get_client(timeout=_CLIENT_TIMEOUT)
            # Up before it says so: a Ctrl-C once "workers:" is out is a normal stop (0).
            up = True
            _announce(cluster, hosts, wanted, time.monotonic() - started)
            _watch(cluster, client, wanted)
        except KeyboardInterrupt:
            pass
        finally:
            _stop(cluster, group, client, summary)
    sys.stdout.flush()
    return int(ExitCode.OK if up else ExitCode.INTERRUPTED)
