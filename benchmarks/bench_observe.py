"""What observing costs (issue 28): bench_engine's throughput with and without a
subscriber and the Prometheus metrics, side by side on the same runtimes.

``python3 benchmarks/bench_observe.py [--rounds N] [--tasks N]`` starts a private bed
of 3 sshd hosts and runs rounds of tasks all in flight (bench_engine's throughput
part: ``run_command("true")``, then ``execute_function``), alternating off and on so
that drift in the machine's load hits both alike. "On" is a subscription read by a
thread of its own (every event, output included) plus :class:`TreeMetrics` counting
every event. It prints each median and the ratio on/off (the goal: at least 0.95), and
the client's CPU time per task off and on (on a loaded machine the steadier figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import _benchlib
import bench_engine
from _benchlib import environment_notes, ssh_bed
from actorcluster import Runtime
from actorcluster.observe import subscribe
from actorcluster.observe.metrics import TreeMetrics

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def observing() -> Iterator[list[int]]:
    """A subscriber reading every event on a thread, and the metrics, while in the block."""
    seen = [0]
    metrics = TreeMetrics()
    subscription = subscribe()

    def read() -> None:
        for _ in subscription:
            seen[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        subscription.close()
        reader.join(10)
        metrics.close()


def _round(runtimes: list[Runtime], functions: bool, cpu: list[float]) -> float:
    """One of bench_engine's rounds; appends this process's CPU microseconds per task
    (what observing adds to, unlike wall time less sensitive to the machine's load)."""
    began = time.process_time()
    rate = bench_engine._ours_round(runtimes, functions)
    cpu.append((time.process_time() - began) / bench_engine.TASKS * 1e6)
    return rate


def main() -> None:
    """Alternate rounds off and on; print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind, off and on")
    parser.add_argument("--tasks", type=int, default=bench_engine.TASKS, help="tasks per round")
    parser.add_argument("--quick", action="store_true", help="1 round of 50 tasks (CI)")
    parser.add_argument("--json", type=Path, help="accepted for run_all.sh; nothing written")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0"):
        args.rounds, args.tasks = 1, 50
    bench_engine.TASKS = args.tasks
    _benchlib.quiet_logging()
    print("\n".join(environment_notes()), flush=True)
    with ssh_bed(3) as bed:
        runtimes = [Runtime(h.name, connection_kwargs=bed.connection_kwargs) for h in bed.hosts]
        try:
            bench_engine._ours_round(runtimes, functions=False)  # warm up
            for functions in (False, True):
                off: list[float] = []
                on: list[float] = []
                cpu_off: list[float] = []
                cpu_on: list[float] = []
                events = 0
                for _ in range(args.rounds):
                    off.append(_round(runtimes, functions, cpu_off))
                    with observing() as seen:
                        on.append(_round(runtimes, functions, cpu_on))
                    events += seen[0]
                kind = "execute_function" if functions else "run_command('true')"
                median_off, median_on = statistics.median(off), statistics.median(on)
                paired = statistics.median(b / a for a, b in zip(off, on, strict=True))
                us_off, us_on = statistics.median(cpu_off), statistics.median(cpu_on)
                print(
                    f"{kind}: off {median_off:.0f} tasks/s, on {median_on:.0f} tasks/s "
                    f"({events} events read), on/off {median_on / median_off:.3f} "
                    f"(median of paired rounds {paired:.3f}); "
                    f"client CPU per task off {us_off:.0f} us, on {us_on:.0f} us "
                    f"(+{(us_on / us_off - 1) * 100:.1f}%)",
                    flush=True,
                )
        finally:
            for runtime in runtimes:
                runtime.cleanup()


if __name__ == "__main__":
    main()
