"""A notebook's summary of a group (its ``_repr_html_``): one row per host.

Facts are read from every host at once, within :data:`~actorcluster.runtimes.reprs.FACTS_WAIT`
(once: they are cached), so rendering a group of many hosts stays quick.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from actorcluster.groups.fanout import on_threads
from actorcluster.runtimes.reprs import FACTS_WAIT, running_count, summary_facts

if TYPE_CHECKING:
    from actorcluster.groups.group import RuntimeGroup
    from actorcluster.runtimes import Runtime

__all__ = ["group_html"]

_COLUMNS = ("host", "state", "tasks running", "cpu cores", "memory", "gpus", "working dir")


def _row(runtime: Runtime, facts: dict[str, Any]) -> tuple[object, ...]:
    memory = facts.get("memory")
    return (
        runtime.host,
        runtime.handle.state,
        running_count(runtime),
        facts.get("cpu_cores", "-"),
        f"{int(memory) / 2**30:.1f} GiB" if isinstance(memory, int) else "-",
        ", ".join(facts.get("gpus") or []) or ("none" if facts else "-"),
        runtime.working_dir,
    )


def group_html(group: RuntimeGroup) -> str:
    """The group's name and a table of its hosts, as HTML."""
    members = group._members.all()
    found = on_threads(
        members, summary_facts, timeout=FACTS_WAIT + 1.0, what="reading facts"
    ).values
    rows = [_row(runtime, found.get(host) or {}) for host, runtime in members.items()]
    head = "".join(f"<th style='text-align:left'>{html.escape(name)}</th>" for name in _COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    title = (
        f"<b>RuntimeGroup</b> <code>{html.escape(group._tree.name)}</code> {len(rows)} runtime(s)"
    )
    return f"<div>{title}<table><tr>{head}</tr>{body}</table></div>"
