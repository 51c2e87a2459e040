"""Progress bars for transfers: rich's on a terminal (stderr), nothing in a pipe."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from actorcluster.cli.console import is_terminal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["Bars", "local_size", "transfer_bars"]

_DESCRIPTION_WIDTH = 40
"""Characters of a bar's description shown: its end (the bar, bytes, speed and time
left need the rest of an 80-column terminal)."""


def _short(description: str, width: int = _DESCRIPTION_WIDTH) -> str:
    """``description``, its start cut to ``width`` characters (the end names the file)."""
    return description if len(description) <= width else "…" + description[-(width - 1) :]


def local_size(path: str) -> tuple[int, int]:
    """(files, bytes) under a local file or folder (links not followed)."""
    if not os.path.isdir(path):
        return 1, os.path.getsize(path) if os.path.exists(path) else 0
    files = size = 0
    for folder, _, names in os.walk(path):
        for name in names:
            files += 1
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


class Bars:
    """One bar per transfer (or none, in a pipe)."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress

    @property
    def shown(self) -> bool:
        """Whether bars are drawn (stderr is a terminal)."""
        return self._progress is not None

    def add(self, description: str, total: int | None) -> Callable[[int, int | None], None]:
        """A bar; returns the ``progress(done, total)`` callback that moves it."""
        progress = self._progress
        if progress is None:
            return lambda done, total: None
        bar = progress.add_task(_short(description), total=total)

        def update(done: int, reported: int | None) -> None:
            known = reported if reported is not None else total
            if known is not None:
                done = min(done, known)
            progress.update(bar, completed=done, total=known)

        return update


@contextlib.contextmanager
def transfer_bars() -> Iterator[Bars]:
    """Bars shown on stderr while the block runs, if stderr is a terminal."""
    if not is_terminal(sys.stderr):
        yield Bars(None)
        return
    from rich.console import Console

    from actorcluster.notebook import transfer_bars

    with transfer_bars(Console(file=sys.stderr)) as progress:
        yield Bars(progress)
