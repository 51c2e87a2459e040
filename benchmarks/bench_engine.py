"""The engine's speed (issue 3) against its peers, side by side, in one run.

``python3 benchmarks/bench_engine.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of 3 sshd hosts and measures:

- latency: ``run_command("true")`` and ``execute_function(lambda: 1)`` on a connected
  runtime (200 each) against paramiko ``exec_command`` on an open connection, fabric's
  ``Connection.run``, ``ssh host true`` (with and without a ControlMaster), dask's
  ``submit().result()``, lazycluster 0.2.4 and, as the floor, a byte's round trip over a
  persistent paramiko channel; the localhost runtime on its own;
- throughput: 1,000 tasks (commands, then functions) over 3 hosts all in flight at
  once, checking none was lost, against paramiko exec in threads, fabric's
  ``ThreadingGroup`` and dask's ``SSHCluster`` (1,000 tiny tasks);
- connect: ``Runtime(...)`` until ready against ``ssh host true`` and paramiko.

The slow peers run 20 times (``--full``: as many as ours). PARTS for ``--skip``:
latency, throughput, connect, fabric, dask, lazycluster. ``--quick`` (``BENCH_QUICK=1``):
a few calls of each, dask and lazycluster (virtualenvs) skipped.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _benchlib
from _benchlib import Report, Section, environment_notes, ssh_bed, time_calls
from _peers import (
    PeerUnavailableError,
    channel_round_trip,
    control_master,
    ensure_venv,
    fabric_config,
    fabric_group_rate,
    home_ssh_config,
    paramiko_client,
    paramiko_exec,
    paramiko_exec_threads,
    run_peer_script,
    ssh_argv,
)
from actorcluster import Runtime, RuntimeTask

if TYPE_CHECKING:
    import argparse

    from sshbed import SshBed

OURS_CALLS = 200
PEER_CALLS = 20
TASKS = 1000
ROUNDS = 3
CONNECTS = 10
LAZYCLUSTER_VENV = Path("/tmp/lazycluster-venv")
DASK_VENV = Path("/tmp/dask-venv")
WAIT = 120.0


def _one() -> int:
    return 1


def _identity(value: int) -> int:
    return value


def _ms(values: list[float]) -> list[float]:
    return [value * 1000 for value in values]


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


# --- latency -----------------------------------------------------------------------------


def _ours_latency(section: Section, runtime: Runtime, label: str, calls: int) -> None:
    def command() -> None:
        runtime.execute_task(RuntimeTask().run_command("true"), execute_async=False)

    def function() -> None:
        task = runtime.execute_function(_one)
        if list(task.function_returns) != [1]:
            raise RuntimeError("execute_function returned something else")

    section.add(
        f"ours {label}: run_command('true')",
        _ms(time_calls(command, calls, 5)),
        ours=True,
        label="run_command",
    )
    runtime.clear_tasks()
    section.add(
        f"ours {label}: execute_function(lambda: 1)",
        _ms(time_calls(function, calls, 5)),
        ours=True,
        label="function",
    )
    runtime.clear_tasks()


def _paramiko_latency(section: Section, bed: SshBed, calls: int) -> None:
    client = paramiko_client(bed)
    try:
        section.add(
            "paramiko exec_command('true'), open connection",
            _ms(time_calls(lambda: paramiko_exec(client, "true"), calls)),
        )
        floor = channel_round_trip(client)
        section.add(
            "floor: 1-byte round trip, persistent paramiko channel",
            _ms(time_calls(floor, OURS_CALLS, 5)),
            note="the floor",
            reference=True,
        )
        floor.close()
    finally:
        client.close()


def _fabric_latency(section: Section, bed: SshBed, calls: int) -> None:
    import fabric

    with fabric.Connection("host-1", config=fabric_config(bed)) as connection:
        section.add(
            "fabric Connection.run('true', hide=True)",
            _ms(time_calls(lambda: connection.run("true", hide=True), calls)),
        )


def _ssh_latency(section: Section, bed: SshBed, calls: int) -> None:
    section.add(
        "ssh host true (new connection each)",
        _ms(time_calls(lambda: _run(*ssh_argv(bed, "host-1", "true")), calls)),
    )
    with (
        tempfile.TemporaryDirectory(prefix="acbench-cm-") as folder,
        control_master(bed, "host-1", Path(folder)) as options,
    ):
        section.add(
            "ssh host true (ControlMaster)",
            _ms(time_calls(lambda: _run(*ssh_argv(bed, *options, "host-1", "true")), calls)),
        )


def measure_latency(report: Report, bed: SshBed, args: argparse.Namespace) -> dict[str, float]:
    """Per-call latency of ours and the peers; returns ours' medians for the targets."""
    peer_calls = OURS_CALLS if args.full else PEER_CALLS
    section = report.section("latency per call, host over SSH", "ms", higher_is_better=False)
    local = report.section(
        "latency per call, localhost runtime (no SSH)", "ms", higher_is_better=False
    )
    with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as runtime:
        _ours_latency(section, runtime, "SSH", OURS_CALLS)
    with Runtime("localhost") as runtime:
        _ours_latency(local, runtime, "localhost", OURS_CALLS)
    _paramiko_latency(section, bed, peer_calls)
    if "fabric" not in args.skip:
        _fabric_latency(section, bed, peer_calls)
    _ssh_latency(section, bed, peer_calls)
    return {row.name: row.stats["median"] for row in section.rows}


# --- throughput --------------------------------------------------------------------------


def _ours_round(runtimes: list[Runtime], functions: bool) -> float:
    """One round of TASKS tasks spread over the runtimes; tasks per second (all checked)."""
    started = time.perf_counter()
    if functions:
        tasks = [
            runtimes[i % len(runtimes)].execute_function(_identity, execute_async=True, value=i)
            for i in range(TASKS)
        ]
        futures = [task.future for task in tasks]
    else:
        futures = [
            runtimes[i % len(runtimes)].execute_task(RuntimeTask().run_command("true"))
            for i in range(TASKS)
        ]
    deadline = time.monotonic() + WAIT
    for future in futures:
        assert future is not None
        future.get(timeout=max(0.1, deadline - time.monotonic()))  # raises if one failed
    seconds = time.perf_counter() - started
    if functions:
        returned = [next(iter(task.function_returns)) for task in tasks]
        if returned != list(range(TASKS)):
            raise RuntimeError("a function's return value was lost or mixed up")
    for runtime in runtimes:
        runtime.clear_tasks()
    return TASKS / seconds


def measure_throughput(report: Report, bed: SshBed, args: argparse.Namespace) -> list[float]:
    """Tasks per second with TASKS in flight over 3 hosts; returns ours' medians."""
    section = report.section(
        f"throughput, {TASKS} tasks in flight over 3 hosts", "tasks/s", higher_is_better=True
    )
    names = [host.name for host in bed.hosts]
    runtimes = [Runtime(name, connection_kwargs=bed.connection_kwargs) for name in names]
    try:
        commands = [_ours_round(runtimes, functions=False) for _ in range(ROUNDS)]
        section.add(
            "ours: run_command('true')", commands, ours=True, note="none lost", label="run_command"
        )
        functions = [_ours_round(runtimes, functions=True) for _ in range(ROUNDS)]
        section.add(
            "ours: execute_function",
            functions,
            ours=True,
            note="none lost, returns checked",
            label="function",
        )
    finally:
        for runtime in runtimes:
            runtime.cleanup()
    count = TASKS if args.full else min(120, TASKS)
    section.add(
        f"paramiko exec_command in 24 threads ({count} tasks)",
        [paramiko_exec_threads(bed, count, WAIT)],
    )
    if "fabric" not in args.skip:
        rounds = TASKS // 3 if args.full else min(10, TASKS // 3)
        section.add(
            f"fabric ThreadingGroup.run x{rounds} ({rounds * 3} tasks)",
            [fabric_group_rate(bed, rounds)],
        )
    if "dask" not in args.skip:
        _dask(report, section, bed)
    return [section.rows[0].stats["median"], section.rows[1].stats["median"]]


def _dask(report: Report, section: Section, bed: SshBed) -> None:
    spec = {
        "hosts": [{"address": host.address, "port": host.port} for host in bed.hosts],
        "user": bed.user,
        "key": str(bed.client_key),
        "tasks": TASKS,
        "rounds": ROUNDS,
        "calls": PEER_CALLS,
    }
    try:
        python = ensure_venv(DASK_VENV, ["distributed", "asyncssh"])
        found = run_peer_script(python, "_dask_peer.py", [json.dumps(spec)], timeout=240)
    except PeerUnavailableError as exc:
        section.skip("dask SSHCluster", str(exc))
        return
    section.add(
        f"dask SSHCluster: {TASKS} tiny functions (map + gather)",
        found["tasks_per_second"],
        note=f"cluster start {found['start'][0]:.2f} s",
    )
    latency = report.get("latency per call, host")
    if latency is not None:
        latency.add("dask client.submit(f).result() (cluster up)", _ms(found["submit_result"]))


# --- connect -----------------------------------------------------------------------------


def _ours_connect(host: str, kwargs: dict[str, Any] | None) -> tuple[list[float], list[float]]:
    connects, cleanups = [], []
    for _ in range(CONNECTS + 1):
        started = time.perf_counter()
        runtime = Runtime(host, connection_kwargs=kwargs)
        ready = time.perf_counter()
        runtime.cleanup()
        connects.append(ready - started)
        cleanups.append(time.perf_counter() - ready)
    return connects[1:], cleanups[1:]  # the first one also imports and builds the agent


def _paramiko_connect(bed: SshBed) -> None:
    client = paramiko_client(bed)
    try:
        paramiko_exec(client, "true")
    finally:
        client.close()


def measure_connect(report: Report, bed: SshBed) -> float:
    """Runtime construction until ready against ``ssh host true``; returns the ratio."""
    section = report.section("connect (until ready)", "ms", higher_is_better=False)
    connects, cleanups = _ours_connect("host-1", bed.connection_kwargs)
    cleanup_ms = sorted(cleanups)[len(cleanups) // 2] * 1000
    section.add(
        "ours: Runtime('host-1')",
        _ms(connects),
        ours=True,
        note=f"cleanup() median {cleanup_ms:.0f} ms, not counted",
        label="SSH host",
    )
    local, _ = _ours_connect("localhost", None)
    section.add("ours: Runtime('localhost')", _ms(local), ours=True, label="localhost")
    section.add(
        "ssh host true", _ms(time_calls(lambda: _run(*ssh_argv(bed, "host-1", "true")), CONNECTS))
    )
    section.add(
        "paramiko connect + exec_command('true')",
        _ms(time_calls(lambda: _paramiko_connect(bed), CONNECTS)),
    )
    return section.advantage(section.rows[0], section.rows[2])


# --- lazycluster -------------------------------------------------------------------------


def measure_lazycluster(report: Report, bed: SshBed, args: argparse.Namespace) -> None:
    """lazycluster 0.2.4 in its own virtualenv, with the bed's hosts in ~/.ssh/config."""
    latency, connect = report.get("latency per call, host"), report.get("connect")
    if latency is None:
        return
    counts = ["10", "20", "10"] if args.full else ["3", "5", "3"]
    try:
        python = ensure_venv(LAZYCLUSTER_VENV, ["lazycluster==0.2.4"])
        with home_ssh_config(bed):
            found = run_peer_script(python, "_lazycluster_peer.py", ["host-1", *counts], 240)
    except PeerUnavailableError as exc:
        latency.skip("lazycluster 0.2.4", str(exc))
        return
    ms = {name: _ms(values) for name, values in found.items()}
    latency.add("lazycluster execute_task(run_command('true'))", ms["run_command"])
    latency.add("lazycluster execute_function(f)", ms["execute_function"])
    latency.add("lazycluster echo('hi')", ms["echo"])
    if connect is not None:
        connect.add("lazycluster Runtime('host-1')", ms["connect"])


# --- main --------------------------------------------------------------------------------


def _targets(report: Report, latency: dict[str, float], rates: list[float], ratio: float) -> None:
    command = latency.get("ours SSH: run_command('true')", float("nan"))
    function = latency.get("ours SSH: execute_function(lambda: 1)", float("nan"))
    paramiko = latency.get("paramiko exec_command('true'), open connection", float("nan"))
    report.target("run_command('true') median, ms", command, "under 5 ms", command < 5)
    report.target("execute_function median, ms", function, "under 5 ms", function < 5)
    report.target(
        "paramiko exec / ours run_command",
        paramiko / command,
        "at least 20x",
        paramiko / command >= 20,
    )
    if rates:
        report.target("tasks/s, commands (none lost)", rates[0], "500/s or more", rates[0] >= 500)
        report.target("tasks/s, functions (none lost)", rates[1], "500/s or more", rates[1] >= 500)
    if not math.isnan(ratio):
        report.target(
            "connect time, ours / ssh host true", 1 / ratio, "at most 1.2x", 1 / ratio <= 1.2
        )


def main() -> None:
    """Run every part not skipped; print the report; write the JSON if asked."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0], quick_skips=("dask", "lazycluster"))
    if args.quick:
        _benchlib.shrink(globals(), OURS_CALLS=3, PEER_CALLS=2, TASKS=30, ROUNDS=1, CONNECTS=1)
    _benchlib.quiet_logging()
    report = Report("bench_engine.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    latency: dict[str, float] = {}
    rates: list[float] = []
    ratio = float("nan")
    with ssh_bed(3) as bed:
        if "latency" not in args.skip:
            latency = measure_latency(report, bed, args)
        if "throughput" not in args.skip:
            rates = measure_throughput(report, bed, args)
        if "connect" not in args.skip:
            ratio = measure_connect(report, bed)
        if "lazycluster" not in args.skip:
            measure_lazycluster(report, bed, args)
    _targets(report, latency, rates, ratio)
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
