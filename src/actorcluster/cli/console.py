"""What the command line prints: rich on a terminal, plain and parseable otherwise.

Messages go to stderr as ``actorcluster: ...`` lines (``error:`` in red on a terminal);
results go to stdout, as a rich table on a terminal and as aligned columns under a
header line (``split()`` parses them) or JSON otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PROG",
    "error",
    "is_terminal",
    "note",
    "print_json",
    "print_table",
    "silence_stdout",
]

PROG = "actorcluster"
"""The program's name, at the start of every message."""


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal (a closed or missing stream is not)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:
        return False


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """Print ``actorcluster: error: MESSAGE`` to stderr."""
    if is_terminal(sys.stderr):
        from rich.markup import escape

        _stderr_console().print(f"{PROG}: [bold red]error:[/] {escape(message)}")
    else:
        _line(f"{PROG}: error: {message}")


def note(message: str) -> None:
    """Print ``actorcluster: MESSAGE`` to stderr (progress, summaries)."""
    if is_terminal(sys.stderr):
        from rich.markup import escape

        _stderr_console().print(f"[dim]{PROG}:[/] {escape(message)}")
    else:
        _line(f"{PROG}: {message}")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """The rows as a rich table on a terminal, else as aligned plain columns (no title)."""
    if is_terminal(sys.stdout):
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("-" if value is None else str(value) for value in row))
        Console(highlight=False).print(table)
        return
    from actorcluster.groups.tables import format_table

    print(format_table(columns, rows), flush=True)


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout."""
    print(json.dumps(value, indent=2, default=str), flush=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader went away, and Python's final flush must
    not fail with a traceback."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _line(text: str) -> None:
    """Write ``text`` and its newline to stderr in one write: output lines that other
    threads write there (``[host] ...``) never land inside it."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()
