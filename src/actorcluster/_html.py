"""Small HTML summaries for notebooks (``_repr_html_``): a titled two-column table.

Jupyter shows an object's ``_repr_html_()`` instead of its ``repr``. Every value is
escaped (a host's output may hold anything) and cut to a bounded length, so rendering
stays cheap and safe whatever a task printed.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["STATE_COLOURS", "summary_table"]

_CELL_LIMIT = 2000
"""Characters of a value shown (the end is kept: the latest output matters most)."""
STATE_COLOURS = {
    "ready": "#2e7d32",
    "running": "#1565c0",
    "done": "#2e7d32",
    "pending": "#1565c0",
    "reconnecting": "#ef6c00",
    "not run": "#757575",
    "not started": "#757575",
    "stopped": "#757575",
    "cancelled": "#757575",
    "failed": "#c62828",
    "restarting": "#ef6c00",
}
"""The colour of each state's label."""


def _cell(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    if len(text) > _CELL_LIMIT:
        text = f"...{text[-_CELL_LIMIT:]}"
    escaped = html.escape(text)
    if "\n" in text:
        return f"<pre style='margin:0;white-space:pre-wrap'>{escaped}</pre>"
    return escaped


def summary_table(kind: str, name: str, state: str, rows: Iterable[tuple[str, object]]) -> str:
    """``<b>kind</b> name [state]`` over a table of ``(label, value)`` rows."""
    colour = STATE_COLOURS.get(state.partition(":")[0], "#757575")
    title = (
        f"<b>{html.escape(kind)}</b> <code>{html.escape(name)}</code> "
        f"<span style='color:{colour};font-weight:bold'>{html.escape(state)}</span>"
    )
    body = "".join(
        f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{_cell(value)}</td></tr>"
        for label, value in rows
    )
    return f"<div>{title}<table>{body}</table></div>"
