"""Printing a group's and a manager's tables: rich on a terminal, plain text otherwise.

Plain text is aligned columns under a header line, so it reads well in a log file and
parses with ``split()``; on a terminal (and with ``rich`` importable) the same rows are
a rich table.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["format_table", "print_table"]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The rows as plain text: a header, then one line per row, columns aligned."""
    cells = [[str(column) for column in columns]]
    cells += [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    file: TextIO | None = None,
) -> None:
    """Print ``title`` and the table to ``file`` (default: stdout)."""
    out = sys.stdout if file is None else file
    if _is_terminal(out):
        console = _rich_console(out)
        if console is not None:
            _print_rich(console, title, columns, rows)
            return
    print(title, file=out)
    print(format_table(columns, rows) if rows else "(none)", file=out)


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value).replace("\n", " ")


def _is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _rich_console(out: TextIO) -> Any:
    try:
        from rich.console import Console
    except ImportError:  # rich is a dependency, but a stripped install still prints
        return None
    return Console(file=out)


def _print_rich(
    console: Any, title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
