"""Progress bars for transfers, in a notebook as on a terminal: :class:`ProgressBar`.

A transfer reports ``progress(done, total)``; a :class:`ProgressBar` is such a callback
that draws a bar with rich (a live bar in Jupyter, a terminal or a plain log)::

    from actorcluster.notebook import ProgressBar

    with ProgressBar("data/ -> host-1") as bar:
        runtime.send_file("data/", progress=bar)

The callback runs on the task's actor thread; rich's bar is safe to update from there.
Leaving the block (or :meth:`ProgressBar.close`) draws the bar's final state; a
transfer whose total is unknown (a folder) shows the bytes moved so far.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ProgressBar"]


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
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress: Any = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
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
