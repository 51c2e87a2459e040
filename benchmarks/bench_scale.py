"""The engine at many hosts and many tasks (issue 9), in one run.

``python3 benchmarks/bench_scale.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of sshd hosts and measures:

- connect: ``Runtime.connect_many`` of N = 10, 50, 100 hosts (that many sshd on
  127.0.0.2-...) against one host's connect; the machine's CPU during the run
  (``/proc/stat``) and the client's own, to tell a CPU-bound bed from serialized
  connects (the hosts' sshd, login shells and Python share this machine's cores);
- threads: client threads per idle connected runtime (20 runtimes, after idling);
- tasks: client CPU per task and tasks/s for functions and commands over 1, 2, 4 and 8
  hosts, 2,000 tasks each submitted in a loop without waiting (10,000 over 8 hosts);
- output: a command printing 10, 30 and 100 MB, ours (wall time, and the client's
  peak RSS above its baseline, in a fresh process each) against
  ``ssh host cmd > /dev/null``;
- memory: a service running 100,000 tasks with ``retain_tasks=1000`` (RSS sampled
  every 10,000 tasks; flat), against the lazycluster default of keeping every task.

``--quick`` (``BENCH_QUICK=1``): 3 hosts, tens of tasks, 1 MB, no threads part.
PARTS for ``--skip``: connect, threads, tasks, output, memory. ``--full`` runs the
memory part to 100,000 tasks for the default too (else 20,000).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed
from actorcluster import Runtime, RuntimeTask

if TYPE_CHECKING:
    from sshbed import SshBed

CONNECT_COUNTS = (10, 50, 100)
HOST_COUNTS = (1, 2, 4, 8)
TASKS = 2000
OUTPUT_MB = (10, 30, 100)
SINGLES = 5
"""One host's connects, for the ratio."""
BIG_TASKS = 10_000
"""Tasks over the most hosts (8)."""
WARMUP_TASKS = 500
MEMORY_TASKS = 100_000
MEMORY_STEP = 10_000
WAIT = 300.0


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _one() -> int:
    return 1


def bench_connect(report: Report, bed: SshBed) -> None:
    section = report.section("connect N runtimes at once", "ms", higher_is_better=False)
    kwargs = bed.connection_kwargs
    singles = []
    for _ in range(SINGLES):
        started = time.perf_counter()
        Runtime("host-1", connection_kwargs=kwargs).cleanup()
        singles.append((time.perf_counter() - started) * 1000)
    one = section.add("one Runtime('host-1')", singles, ours=True, label="one")
    ratios = {}
    for count in CONNECT_COUNTS:
        hosts = [f"host-{i}" for i in range(1, count + 1)]
        machine, client = _machine_cpu(), time.process_time()
        started = time.perf_counter()
        connected = Runtime.connect_many(hosts, connection_kwargs=kwargs, timeout=WAIT)
        wall = time.perf_counter() - started
        machine, client = _machine_cpu() - machine, time.process_time() - client
        bound = machine / (os.cpu_count() or 1)
        note = (
            f"{len(connected.runtimes)} up; machine CPU {machine:.1f} s (= {bound:.1f} s of "
            f"wall on {os.cpu_count()} cores), client CPU {client:.2f} s"
        )
        section.add(f"connect_many of {count}", [wall * 1000], ours=True, note=note)
        ratios[count] = wall * 1000 / one.stats["median"]
        for runtime in connected.runtimes.values():
            runtime.cleanup()
        report.notes.append(
            f"connect {count}: {ratios[count]:.1f}x one connect; the bed's CPU alone bounds it "
            f"at {bound * 1000 / one.stats['median']:.1f}x"
        )
    most = max(CONNECT_COUNTS)
    report.target(
        f"connect of {most} / one connect", ratios[most], "at most 3x", ratios[most] <= 3.0
    )


def bench_threads(report: Report, bed: SshBed) -> None:
    section = report.section(
        "client threads per idle connected runtime", "threads", higher_is_better=False
    )
    time.sleep(3)  # let shared workers from earlier parts go idle and end
    before = threading.active_count()
    connected = Runtime.connect_many(
        [f"host-{i}" for i in range(1, 21)], connection_kwargs=bed.connection_kwargs
    )
    time.sleep(4)  # idle: the actor pool's workers and the timer thread end
    per_runtime = (threading.active_count() - before) / len(connected.runtimes)
    names = sorted({t.name.rsplit("-", 1)[0] for t in threading.enumerate()})
    section.add("20 idle runtimes", [per_runtime], ours=True, note=f"thread kinds: {names}")
    for runtime in connected.runtimes.values():
        runtime.cleanup()
    report.target("threads per idle runtime", per_runtime, "at most 3", per_runtime <= 3)


def _rate(runtimes: list[Runtime], count: int, kind: str) -> tuple[float, float]:
    """Tasks/s and client CPU ms per task for ``count`` tasks spread over ``runtimes``."""
    tasks = [RuntimeTask(f"t{i}") for i in range(count)]
    for task in tasks:
        task.run_function(_one) if kind == "function" else task.run_command("true")
    gc.collect()
    cpu, started = time.process_time(), time.perf_counter()
    futures = [runtimes[i % len(runtimes)].execute_task(task) for i, task in enumerate(tasks)]
    for future in futures:
        future.get(timeout=WAIT)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count / wall, cpu * 1000 / count


def bench_tasks(report: Report, bed: SshBed) -> None:
    rates = report.section("tasks in flight over N hosts", "tasks/s", higher_is_better=True)
    costs = report.section("client CPU per task", "ms", higher_is_better=False)
    connected = Runtime.connect_many(
        [f"host-{i}" for i in range(1, max(HOST_COUNTS) + 1)],
        connection_kwargs=bed.connection_kwargs,
        retain_tasks=0,
    )
    runtimes = list(connected.runtimes.values())
    best: dict[str, float] = {}
    try:
        _rate(runtimes, WARMUP_TASKS, "function")  # warm up
        for kind in ("function", "command"):
            for hosts in HOST_COUNTS:
                count = BIG_TASKS if hosts == max(HOST_COUNTS) else TASKS
                rate, cost = _rate(runtimes[:hosts], count, kind)
                rates.add(f"{kind}s over {hosts} hosts ({count:,} tasks)", [rate], ours=True)
                costs.add(f"{kind}s over {hosts} hosts", [cost], ours=True)
                best[kind] = rate if hosts == max(HOST_COUNTS) else best.get(kind, 0.0)
                best[f"{kind}-cost"] = min(best.get(f"{kind}-cost", cost), cost)
    finally:
        for runtime in runtimes:
            runtime.cleanup()
    report.target(
        "function tasks/s over 8 hosts", best["function"], "1,500 or more", best["function"] >= 1500
    )
    report.target(
        "command tasks/s over 8 hosts", best["command"], "1,000 or more", best["command"] >= 1000
    )
    cost = min(best["function-cost"], best["command-cost"])
    report.target("client CPU per task, ms", cost, "at most 0.4", cost <= 0.4)


OUTPUT_CLIENT = textwrap.dedent(
    """
    import resource, sys, time
    sys.path[:0] = sys.argv[4:]
    from actorcluster import Runtime, RuntimeTask
    host, config, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runtime = Runtime(host, connection_kwargs={"ssh_config_path": config})
    runtime.execute_task(RuntimeTask("warm").run_command("true"), execute_async=False)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    command = f"head -c {megabytes * 1000000} /dev/zero | tr '\\\\0' x"
    started = time.perf_counter()
    task = runtime.execute_task(RuntimeTask("big").run_command(command), execute_async=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(task.execution_log[0]) == megabytes * 1000000
    runtime.cleanup()
    print(seconds, (peak - base) / 1024)
    """
)


def bench_output(report: Report, bed: SshBed) -> None:
    speed = report.section("a command printing N MB", "s", higher_is_better=False)
    memory = report.section("client peak RSS growth while it prints", "MB", higher_is_better=False)
    paths = [str(_benchlib.REPO / "src"), str(_benchlib.REPO / "tests")]
    ratios = []
    for megabytes in OUTPUT_MB:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                OUTPUT_CLIENT,
                "host-1",
                str(bed.ssh_config),
                str(megabytes),
                *paths,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=WAIT,
        ).stdout.split()
        ours, rss = float(out[-2]), float(out[-1])
        command = f"head -c {megabytes * 1000000} /dev/zero | tr '\\0' x"
        started = time.perf_counter()
        subprocess.run(
            ["ssh", "-F", str(bed.ssh_config), "host-1", command],
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=WAIT,
        )
        ssh = time.perf_counter() - started
        speed.add(f"ours, {megabytes} MB", [ours], ours=True, label=f"{megabytes} MB")
        speed.add(f"ssh host cmd > /dev/null, {megabytes} MB", [ssh])
        memory.add(
            f"{megabytes} MB of output", [rss], ours=True, note=f"{rss / megabytes:.2f}x the output"
        )
        ratios.append((megabytes, ssh / ours, rss / megabytes))
    for megabytes, ratio, rss in ratios:
        report.notes.append(
            f"output {megabytes} MB: {ratio:.2f}x ssh's speed, RSS growth {rss:.2f}x the output"
        )
    worst_speed = min(ratio for _, ratio, _ in ratios)
    worst_rss = max(rss for _, _, rss in ratios)
    report.target(
        "output speed / ssh's (worst of 10/30/100 MB)",
        worst_speed,
        "at least 0.5x",
        worst_speed >= 0.5,
    )
    report.target("client RSS growth / output size (worst)", worst_rss, "under 2x", worst_rss < 2.0)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(report: Report, bed: SshBed, full: bool) -> None:
    section = report.section("RSS while a runtime runs many tasks", "MB", higher_is_better=False)
    step = MEMORY_STEP
    default_total = MEMORY_TASKS if full else MEMORY_TASKS // 5
    for retain, total in ((1000, MEMORY_TASKS), (None, default_total)):
        runtime = Runtime("localhost", retain_tasks=retain)
        samples = []
        try:
            for done in range(0, total, step):
                futures = [
                    runtime.execute_task(RuntimeTask(f"m{done + i}").run_function(_one))
                    for i in range(step)
                ]
                for future in futures:
                    future.get(timeout=WAIT)
                del futures
                gc.collect()
                samples.append(_rss_mb())
        finally:
            runtime.cleanup()
        label = (
            f"retain_tasks={retain}"
            if retain is not None
            else "every task kept (lazycluster's default)"
        )
        shown = ", ".join(f"{value:.0f}" for value in samples)
        note = f"every {step:,}: {shown}"
        section.add(f"{label}, {total:,} tasks", samples, ours=True, note=note)
        if retain is not None:
            growth = samples[-1] - samples[0]
            report.target(
                "RSS growth from 10,000 to 100,000 tasks with retain_tasks=1000, MB",
                growth,
                "flat (under 20 MB)",
                growth < 20,
            )


def main() -> None:
    args = _benchlib.bench_arguments(__doc__.splitlines()[0], quick_skips=("threads",))
    if args.quick:
        _benchlib.shrink(
            globals(),
            CONNECT_COUNTS=(3,),
            HOST_COUNTS=(1, 2),
            TASKS=20,
            OUTPUT_MB=(1,),
            SINGLES=1,
            BIG_TASKS=20,
            WARMUP_TASKS=5,
            MEMORY_TASKS=20,
            MEMORY_STEP=10,
        )
    _benchlib.quiet_logging()
    report = Report("bench_scale.py", environment_notes())
    hosts = max(CONNECT_COUNTS) if "connect" not in args.skip else 20
    hosts = max(*CONNECT_COUNTS, *HOST_COUNTS) if args.quick else hosts
    with ssh_bed(hosts) as bed:
        if "connect" not in args.skip:
            bench_connect(report, bed)
        if "threads" not in args.skip:
            bench_threads(report, bed)
        if "tasks" not in args.skip:
            bench_tasks(report, bed)
        if "output" not in args.skip:
            bench_output(report, bed)
        if "memory" not in args.skip:
            bench_memory(report, bed, args.full)
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
