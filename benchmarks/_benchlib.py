"""What every benchmark script shares: the test bed, timing, tables, targets and JSON.

The scripts run actorcluster and its peers side by side in one run, against the same
``sshd`` hosts of a private :class:`SshBed` (``tests/sshbed.py``), and print medians and
ratios. Importing this module puts the repository's ``src`` and ``tests`` first on
``sys.path``, so the scripts measure this checkout whatever is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests", REPO / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import structlog  # noqa: E402 (after the path set-up above)

from sshbed import SshBed  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "REPO",
    "EventCounter",
    "Report",
    "Row",
    "Section",
    "bench_arguments",
    "environment_notes",
    "quick_mode",
    "quiet_logging",
    "shrink",
    "ssh_bed",
    "summarize",
    "time_calls",
]

LOG_DIR_VARIABLE = "ACTORCLUSTER_LOG_DIR"
"""Where actorcluster writes its execution log files."""
QUICK_VARIABLE = "BENCH_QUICK"
"""``BENCH_QUICK=1`` in the environment runs every script in quick mode (as ``--quick``)."""
RTT_MS = 0.0
"""Round-trip time the bed's relays add (``--rtt MS``; 0: none, hosts on loopback)."""
PYENV_LOCK = Path.home() / ".pyenv" / "shims" / ".pyenv-shim"
"""pyenv's rehash lock: left behind by a killed login, it delays every login by seconds."""


def quiet_logging() -> None:
    """Configure structlog (the application's job) to print warnings and errors only."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


class EventCounter:
    """Counts the library's log events by name, through the public logging interface.

    :meth:`install` configures structlog (the application's choice) to pass every level
    to this counter, then to print warnings and errors only, as :func:`quiet_logging`.
    A benchmark reads ``counts["modules.sent"]`` instead of an object's private state.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, dict[str, Any]] = {}
        """The fields of the latest event of each name."""

    def __call__(self, logger: object, method: str, event: dict[str, Any]) -> dict[str, Any]:
        """The structlog processor: count, then drop what is below warning."""
        name = str(event.get("event"))
        self.counts[name] = self.counts.get(name, 0) + 1
        self.last[name] = dict(event)
        if method in ("debug", "info"):
            raise structlog.DropEvent
        return event

    def get(self, *names: str) -> int:
        """How many events of any of ``names`` were logged so far."""
        return sum(self.counts.get(name, 0) for name in names)

    def install(self) -> EventCounter:
        """Configure structlog with this counter first; return self."""
        structlog.configure(
            processors=[self, structlog.processors.add_log_level, structlog.dev.ConsoleRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        )
        return self


def quick_mode(argv_flag: bool = False) -> bool:
    """Whether the script runs in quick mode: ``--quick`` or ``BENCH_QUICK=1``.

    Quick mode (CI's) proves the script still runs against today's API: small counts,
    one sample, peers that need a download or a virtualenv skipped. Its numbers mean
    nothing; it must only exit 0.
    """
    return argv_flag or os.environ.get(QUICK_VARIABLE, "") not in ("", "0")


def shrink(namespace: dict[str, Any], **small: Any) -> None:
    """Quick mode: replace the script's count constants (``OURS_CALLS=3``...) in
    ``namespace`` (its ``globals()``); each name must exist, so a renamed constant fails
    loudly instead of running the full count."""
    for name, value in small.items():
        if name not in namespace:
            raise KeyError(f"shrink: the script has no constant {name!r}")
        namespace[name] = value


def peer_missing(module: str) -> str | None:
    """Why the optional peer package ``module`` cannot run here, or None if it can."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def bench_arguments(description: str, *, quick_skips: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse the options every script takes: ``--json PATH``, ``--full``, ``--skip``,
    ``--quick`` (or ``BENCH_QUICK=1``), which also skips the parts in ``quick_skips``
    (peers that need a virtualenv made from PyPI, minutes long parts)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--full", action="store_true", help="the issue's counts for the slow peers too"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to leave out (see the script's doc)"
    )
    parser.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        metavar="MS",
        help="reach the hosts through a relay adding MS of round-trip time",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small counts, one sample: only checks that the script runs ({QUICK_VARIABLE}=1)",
    )
    args = parser.parse_args()
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    args.quick = quick_mode(args.quick)
    global RTT_MS  # noqa: PLW0603 (one setting for the whole script, as its argv is)
    RTT_MS = args.rtt
    if "fabric" not in args.skip and (why := peer_missing("fabric")):
        args.skip.add("fabric")
        print(f"fabric: skipped: {why}")
    if args.quick:
        args.full = False
        args.skip |= set(quick_skips)
        print(f"quick mode: counts shrunk, skipped {sorted(quick_skips) or 'nothing'}")
    return args


def environment_notes() -> list[str]:
    """Facts about this machine that change the numbers, printed before the tables."""
    notes = [
        f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} "
        f"(1 min), Python {platform.python_version()}, {_ssh_version()}"
    ]
    if PYENV_LOCK.exists() and time.time() - PYENV_LOCK.stat().st_mtime > 30:
        notes.append(
            f"WARNING: stale pyenv rehash lock {PYENV_LOCK} (a killed login left it): every "
            "login through a shell that runs `pyenv init` waits for it (2 s on the bed, "
            "PYENV_REHASH_TIMEOUT=2), so connect and per-session numbers are inflated. "
            "If no `pyenv rehash` runs, remove the file and run again."
        )
    return notes


def _ssh_version() -> str:
    out = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).strip().split(",")[0]


@contextlib.contextmanager
def ssh_bed(count: int) -> Iterator[SshBed]:
    """A started bed of ``count`` hosts in a fresh temporary folder, removed afterwards
    (behind relays adding :data:`RTT_MS` of round-trip time, if set).

    The runtimes' execution log files (one per task) go to that folder too, instead of
    piling up in the shared default place (``$ACTORCLUSTER_LOG_DIR``).
    """
    root = Path(tempfile.mkdtemp(prefix="acbench-", dir="/tmp"))
    previous = os.environ.get(LOG_DIR_VARIABLE)
    os.environ[LOG_DIR_VARIABLE] = str(root / "execution_log")
    try:
        with SshBed(root / "bed", count, rtt_ms=RTT_MS) as bed:
            yield bed
    finally:
        if previous is None:
            os.environ.pop(LOG_DIR_VARIABLE, None)
        else:
            os.environ[LOG_DIR_VARIABLE] = previous
        shutil.rmtree(root, ignore_errors=True)


def time_calls(call: Callable[[], object], count: int, warmup: int = 1) -> list[float]:
    """Seconds taken by each of ``count`` calls of ``call``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def summarize(values: list[float]) -> dict[str, float]:
    """Median, p90 (nearest rank), min, max and mean of ``values``."""
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "median": statistics.median(ordered),
        "p90": p90,
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


@dataclass
class Row:
    """One measured thing: a name, its samples (in the section's unit) and whose it is."""

    name: str
    values: list[float]
    ours: bool = False
    note: str = ""
    label: str = ""
    """A short name for ours in the ratio table's header."""
    reference: bool = False
    """A floor or ceiling shown for scale, left out of the ratios."""

    @property
    def stats(self) -> dict[str, float]:
        """See :func:`summarize`."""
        return summarize(self.values)


@dataclass
class Section:
    """A table of rows in one unit; ratios compare each of ours with each peer."""

    title: str
    unit: str
    higher_is_better: bool
    rows: list[Row] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(
        self,
        name: str,
        values: list[float],
        *,
        ours: bool = False,
        note: str = "",
        label: str = "",
        reference: bool = False,
    ) -> Row:
        """Add a row and print it at once (long runs show progress)."""
        row = Row(name, values, ours, note, label, reference)
        self.rows.append(row)
        stats = row.stats
        print(
            f"  {self.title}: {name}: median {_fmt(stats['median'])} {self.unit} (n={len(values)})"
        )
        return row

    def skip(self, name: str, reason: str) -> None:
        """Record a peer that could not run, and why."""
        self.skipped.append(f"{name}: {reason}")
        print(f"  {self.title}: {name}: SKIPPED: {reason}")

    def advantage(self, ours: Row, peer: Row) -> float:
        """How many times better ours is than the peer (above 1: ours is better)."""
        a, b = ours.stats["median"], peer.stats["median"]
        return (a / b if self.higher_is_better else b / a) if a and b else float("nan")

    def render(self) -> str:
        """The section as text: the rows, then ours against each peer."""
        better = "higher" if self.higher_is_better else "lower"
        lines = [f"== {self.title} ({self.unit}, {better} is better)"]
        width = max([len(row.name) for row in self.rows] + [21])
        legend = "(* ours, ~ reference)"
        lines.append(f"  {legend:{width}}  {'n':>5}  {'median':>10}  {'p90':>10}  {'min':>10}")
        for row in self.rows:
            s = row.stats
            mark = "*" if row.ours else ("~" if row.reference else " ")
            lines.append(
                f" {mark}{row.name:{width}}  {len(row.values):>5}  {_fmt(s['median']):>10}  "
                f"{_fmt(s['p90']):>10}  {_fmt(s['min']):>10}  {row.note}".rstrip()
            )
        lines.extend(self._ratio_lines())
        lines.extend(f"  skipped: {reason}" for reason in self.skipped)
        return "\n".join(lines)

    def _ratio_lines(self) -> list[str]:
        ours = [row for row in self.rows if row.ours]
        peers = [row for row in self.rows if not row.ours and not row.reference]
        if not ours or not peers:
            return []
        width = max(len(peer.name) for peer in peers)
        labels = [row.label or row.name for row in ours]
        lines = ["  how many times better ours is than each peer (median against median):"]
        lines.append(f"    {'':{width}}  " + "  ".join(f"{label:>14}" for label in labels))
        for peer in peers:
            cells = "  ".join(f"{self.advantage(mine, peer):>13.2f}x" for mine in ours)
            lines.append(f"    {peer.name:{width}}  {cells}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The section as plain data (samples included)."""
        return {
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "rows": [{**asdict(row), "stats": row.stats} for row in self.rows],
            "skipped": self.skipped,
        }


@dataclass
class Target:
    """A goal from the issue, checked against a measured number."""

    description: str
    measured: float
    goal: str
    met: bool


@dataclass
class Report:
    """Everything one script measured: sections, targets, notes; printed and saved."""

    script: str
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def section(self, title: str, unit: str, *, higher_is_better: bool) -> Section:
        """Start a new section."""
        section = Section(title, unit, higher_is_better)
        self.sections.append(section)
        return section

    def get(self, title_start: str) -> Section | None:
        """The first section whose title starts with ``title_start``, if any."""
        return next((s for s in self.sections if s.title.startswith(title_start)), None)

    def target(self, description: str, measured: float, goal: str, met: bool) -> None:
        """Record whether a goal was met."""
        self.targets.append(Target(description, measured, goal, met))

    def render(self) -> str:
        """The whole report as text."""
        parts = [f"### {self.script}", *self.notes]
        parts.extend(section.render() for section in self.sections)
        if self.targets:
            parts.append("== targets")
            parts.extend(
                f"  [{'met' if t.met else 'MISSED'}] {t.description}: {_fmt(t.measured)} "
                f"(goal: {t.goal})"
                for t in self.targets
            )
        return "\n".join(parts)

    def write_json(self, path: Path | None) -> None:
        """Write the report as JSON to ``path`` (nothing if None)."""
        if path is None:
            return
        data = {
            "script": self.script,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "notes": self.notes,
            "sections": [section.to_json() for section in self.sections],
            "targets": [asdict(target) for target in self.targets],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"results written to {path}")


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"
