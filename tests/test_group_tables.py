"""The tables print_* methods print: rich on a terminal, aligned plain text otherwise;
and the group's new error, which must survive pickling like every other."""

from __future__ import annotations

import io
import pickle

from actorcluster import NoRuntimesDetectedError
from actorcluster.groups.tables import format_table, print_table


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_tables_align_columns_under_a_header():
    text = format_table(("host", "state"), [("host-1", "ready"), ("a-long-host", None)])
    assert text.splitlines() == [
        "host         state",
        "host-1       ready",
        "a-long-host  -",
    ]


def test_print_table_is_plain_off_a_terminal_and_rich_on_one():
    plain = io.StringIO()
    print_table("2 runtime(s)", ("host", "state"), [("host-1", "ready")], file=plain)
    assert plain.getvalue() == "2 runtime(s)\nhost    state\nhost-1  ready\n"
    terminal = _Terminal()
    print_table("2 runtime(s)", ("host", "state"), [("host-1", "ready")], file=terminal)
    shown = terminal.getvalue()
    assert "host-1" in shown and "ready" in shown
    assert "│" in shown or "|" in shown  # a drawn table, not the plain text


def test_an_empty_table_says_so():
    out = io.StringIO()
    print_table("0 inactive host(s)", ("host", "reason"), [], file=out)
    assert out.getvalue() == "0 inactive host(s)\n(none)\n"


def test_no_runtimes_detected_pickles_and_takes_lazyclusters_predecessor_argument():
    error = NoRuntimesDetectedError("none of ['a'] passes the filters")
    assert pickle.loads(pickle.dumps(error)) == error
    assert str(error) == "no runtimes detected: none of ['a'] passes the filters"
    wrapped = NoRuntimesDetectedError(ValueError("empty group"))
    assert str(pickle.loads(pickle.dumps(wrapped))) == "no runtimes detected: empty group"
    assert str(NoRuntimesDetectedError()) == "no runtimes detected"
