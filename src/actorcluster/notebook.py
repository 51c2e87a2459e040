"""Progress bars in a notebook (as on a terminal): transfers and cluster starts.

A transfer reports ``progress(done, total)``; a :class:`ProgressBar` is such a callback
that draws a bar with rich (a live bar in Jupyter, a terminal or a plain log)::

    from actorcluster.notebook import ProgressBar

    with ProgressBar("data/ -> host-1") as bar:
        runtime.send_file("data/", progress=bar)

The callback runs on the task's actor thread; rich's bar is safe to update from there.
Leaving the block (or :meth:`ProgressBar.close`) draws the bar's final state; a
transfer whose total is unknown (a folder) shows the bytes moved so far.

:func:`start_cluster` starts a cluster as ``cluster.start()`` does, with a bar that
counts the master, then each worker as the scheduler lists it::

    from actorcluster.notebook import start_cluster

    cluster = DaskCluster(group)
    start_cluster(cluster, worker_count=8)

A live bar in Jupyter needs ``ipywidgets`` (the ``notebook`` extra:
``pip install 'actorcluster[notebook]'``). Without it the bars are drawn as plain text
instead (their final state, when they end), and a note says what to install.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import TYPE_CHECKING, Any

from actorcluster._workers import THREADS

if TYPE_CHECKING:
    from rich.console import Console

    from actorcluster.cluster import MasterWorkerCluster

__all__ = ["ProgressBar", "start_cluster", "transfer_bars"]

_POLL = 0.25
"""Seconds between looks at how many workers a starting cluster has."""
_NO_WIDGETS = (
    "actorcluster: live progress bars in Jupyter need ipywidgets "
    "(pip install 'actorcluster[notebook]'); showing them as plain text"
)


def _drawable(console: Console | None) -> Console | None:
    """``console`` (None: rich's default), unless it is a notebook's and ipywidgets,
    which rich's live display there needs, is missing: then a plain-text console on
    the same output, after a note saying what to install."""
    from rich.console import Console

    chosen = console if console is not None else Console()
    if not chosen.is_jupyter or importlib.util.find_spec("ipywidgets") is not None:
        return console
    plain = Console(file=chosen.file, force_jupyter=False, force_terminal=False)
    plain.print(_NO_WIDGETS, markup=False, highlight=False, soft_wrap=True)
    return plain


def transfer_bars(console: Console | None = None) -> Any:
    """A rich ``Progress`` with a transfer's columns: what, bar, bytes, speed, time left
    (``console``: where to draw; default rich's)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_drawable(console),
    )


class ProgressBar:
    """A progress bar for one transfer; pass it as ``progress=``.

    Args:
        description: what moves (shown before the bar).
        total: the bytes expected, if known before the transfer reports them.
        console: where to draw (default: rich's, which finds a notebook by itself).
    """

    def __init__(
        self,
        description: str = "transfer",
        total: int | None = None,
        console: Console | None = None,
    ) -> None:
        self._progress: Any = transfer_bars(console)
        self._bar = self._progress.add_task(description, total=total)
        self._total = total
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        task = self._progress.tasks[0]
        return f"<ProgressBar {task.description!r} {task.completed}/{task.total}>"

    def __call__(self, done: int, total: int | None) -> None:
        """Move the bar to ``done`` bytes of ``total`` (None: unknown)."""
        with self._lock:
            if self._closed:
                return
            if not self._started:
                self._progress.start()
                self._started = True
            known = total if total is not None else self._total
            self._progress.update(self._bar, completed=done, total=known)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Draw the final state and stop updating (again does nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._started:
                self._progress.start()
            self._progress.refresh()
            self._progress.stop()


def _registered(client: Any) -> int | None:
    """How many workers the scheduler lists (None if it does not answer now)."""
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # a busy scheduler answers at the next look
        return None


def _start_workers(cluster: MasterWorkerCluster, count: int, progress: Any, bar: Any) -> None:
    """Start the workers on a thread; move the bar as the scheduler lists them."""
    failure: list[BaseException] = []

    def start() -> None:
        try:
            cluster.start_workers(count)
        except BaseException as exc:  # raised below, on the caller's thread
            failure.append(exc)

    worker = THREADS.start(start, name=f"start-{cluster.name}")
    get_client = getattr(cluster, "get_client", None)
    client = get_client(timeout=30) if get_client is not None else None
    try:
        while worker.is_alive():
            worker.join(_POLL)
            seen = _registered(client) if client is not None else None
            if seen is not None:
                progress.update(bar, completed=1 + min(seen, count))
    finally:
        if client is not None:
            client.close()
    if failure:
        raise failure[0]


def start_cluster(
    cluster: MasterWorkerCluster,
    worker_count: int | None = None,
    master_port: int | None = None,
    *,
    console: Console | None = None,
) -> None:
    """``cluster.start(worker_count, master_port)`` with a progress bar: one step for
    the master, one for each worker as the scheduler lists it (a cluster without a
    ``get_client`` counts its workers at the end).

    Raises:
        ActorClusterError: what ``cluster.start`` raises (its subclasses say why).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    count = worker_count or cluster.runtime_group.runtime_count
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=_drawable(console)) as progress:
        bar = progress.add_task(f"{cluster.name}: master", total=1 + count)
        cluster.start_master(master_port)
        progress.update(bar, completed=1, description=f"{cluster.name}: workers")
        _start_workers(cluster, count, progress, bar)
        progress.update(bar, completed=1 + count, description=f"{cluster.name}: ready")
