"""The figures of a chaos run: tasks/s, p50/p99 latency, time to recover per fault kind;
written to ``benchmarks/results/chaos.json`` (one entry per mode) and printed as a table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.faults import DASK_KINDS

if TYPE_CHECKING:
    from chaos.faults import Fault
    from chaos.workload import Workload

__all__ = ["RESULTS", "recover_times", "report", "table"]

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "chaos.json"


def recover_times(
    faults: list[tuple[Fault, float, float]], workload: Workload
) -> dict[str, list[float]]:
    """Per fault kind, seconds to recover from each: for a host fault, from its heal to
    the end of the first task that started on that host after it and succeeded; for a
    Dask fault, from the kill to the cluster at full strength (its heal waits for that)."""
    times: dict[str, list[float]] = {}
    for fault, injected, healed in faults:
        if fault.kind in DASK_KINDS:
            times.setdefault(fault.kind, []).append(round(healed - injected, 3))
            continue
        after = [
            o.ended - healed
            for o in workload.outcomes
            if o.ok and o.host == fault.host and o.started >= healed
        ]
        if after:
            times.setdefault(fault.kind, []).append(round(min(after), 3))
    return times


def _quantiles(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100) if len(ordered) > 1 else [0.0] * 99


def report(
    mode: str, workload: Workload, took: float, recover: dict[str, list[float]], **extra: Any
) -> dict[str, Any]:
    """The run's figures (``extra`` added as they are), saved under ``mode``."""
    quantiles = _quantiles([o.ended - o.started for o in workload.outcomes if o.ok])
    figures = {
        "mode": mode,
        "seconds": round(took, 1),
        "tasks": len(workload.outcomes),
        "succeeded": sum(o.ok for o in workload.outcomes),
        "failed_typed": sum(not o.ok and not o.problem for o in workload.outcomes),
        "tasks_per_second": round(len(workload.outcomes) / took, 1),
        "latency_p50_ms": round(quantiles[49] * 1000, 1),
        "latency_p99_ms": round(quantiles[98] * 1000, 1),
        "recover_seconds": {
            kind: {
                "count": len(values),
                "median": statistics.median(values),
                "max": max(values),
            }
            for kind, values in sorted(recover.items())
        },
        **extra,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous[mode] = figures
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2, sort_keys=True))
    print(table(figures))
    return figures


def table(figures: dict[str, Any]) -> str:
    """The figures as a Markdown table (what the closing note of a full run quotes)."""
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| seed | {figures.get('seed')} |",
        f"| seconds | {figures['seconds']} |",
        f"| tasks (succeeded / failed typed) | {figures['tasks']} "
        f"({figures['succeeded']} / {figures['failed_typed']}) |",
        f"| tasks/s | {figures['tasks_per_second']} |",
        f"| latency p50 / p99 (ms) | {figures['latency_p50_ms']} / {figures['latency_p99_ms']} |",
    ]
    for kind, values in figures["recover_seconds"].items():
        rows.append(
            f"| recover {kind} (n={values['count']}) | median {values['median']:.2f} s, "
            f"max {values['max']:.2f} s |"
        )
    return "\n".join(rows)
