"""Groups and discovery (issue 14) against their peers, side by side, in one run.

``python3 benchmarks/bench_groups.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of 20 sshd hosts (127.0.0.2-21) and measures:

- connect: ``RuntimeManager`` discovering and connecting all 20 hosts from the bed's
  ssh_config, and ``RuntimeGroup(hosts=...)`` connecting them, against one host's
  ``Runtime(...)`` (the target: under 3x one host); 20 ``ssh host true`` at once as a
  reference for what the machine can do; the machine's CPU use during each (from
  /proc/stat), which tells CPU-bound from serialized;
- broadcast: ``group.execute_task(run_command("true"), broadcast=True)`` on 20 hosts,
  waiting for all, against fabric's ``ThreadingGroup.run("true")`` on the same hosts;
- ports: ``group.has_free_port(port)`` over 20 hosts (one request per host, all at
  once) against lazycluster 0.2.4's approach: per host, one after another, a new SSH
  connection that runs a ``python3 -c`` port check (fabric ``Connection.run`` in a
  ``with`` block, as its ``Runtime.has_free_port`` does).

The slow peers run fewer times (``--full``: as many as ours). PARTS for ``--skip``:
connect, broadcast, ports, fabric, lazycluster. ``--quick`` (``BENCH_QUICK=1``): 3 hosts,
one sample of each, lazycluster's way skipped.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import TYPE_CHECKING

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed, time_calls
from _peers import fabric_config, ssh_argv
from actorcluster import Runtime, RuntimeGroup, RuntimeManager, RuntimeTask

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from sshbed import SshBed

HOSTS = 20
CONNECTS = 5
GROUP_CONNECTS = 3
BROADCASTS = 50
PEER_BROADCASTS = 10
PORT_CHECKS = 50
PEER_PORT_CHECKS = 2
_LAZYCLUSTER_CHECK = (
    "python3 -c \"import socket;print('free') "
    "if socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect_ex(('localhost', {port})) "
    'else None"'
)


def _ms(values: list[float]) -> list[float]:
    return [value * 1000 for value in values]


class CpuMeter:
    """The machine's CPU time spent, from /proc/stat, over a stretch of wall time."""

    def __init__(self) -> None:
        self._busy, self._total = self._read()
        self._started = time.perf_counter()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def cores_busy(self) -> float:
        """Average number of cores busy since the meter started (all processes)."""
        busy, total = self._read()
        share = (busy - self._busy) / max(1, total - self._total)
        return share * (os.cpu_count() or 1)


def _timed_with_cpu(call: Callable[[], object], count: int) -> tuple[list[float], float]:
    """Seconds per call, and the cores busy on average over all of them."""
    samples, cores = [], []
    for _ in range(count):
        meter = CpuMeter()
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
        cores.append(meter.cores_busy())
    return samples, sum(cores) / len(cores)


# --- connect ---------------------------------------------------------------------------


def measure_connect(report: Report, bed: SshBed) -> float:
    """Discovery + connect of every host, and a group's connect, against one host's."""
    section = report.section(f"connect, {HOSTS} hosts", "ms", higher_is_better=False)
    kwargs = bed.connection_kwargs
    names = [host.name for host in bed.hosts]

    def one() -> None:
        Runtime("host-1", connection_kwargs=kwargs).cleanup()

    def discover() -> None:
        manager = RuntimeManager(str(bed.ssh_config), timeout=120)
        assert len(manager.hosts) == HOSTS, manager.inactive_hosts
        manager.cleanup()

    def group() -> None:
        RuntimeGroup(hosts=names, connection_kwargs=kwargs).cleanup()

    def ssh_all() -> None:
        procs = [
            subprocess.Popen(ssh_argv(bed, name, "true"), stdin=subprocess.DEVNULL)
            for name in names
        ]
        assert all(proc.wait(60) == 0 for proc in procs)

    def ssh_one() -> None:
        subprocess.run(ssh_argv(bed, "host-1", "true"), stdin=subprocess.DEVNULL, check=True)

    one_ms, one_cpu = _timed_with_cpu(one, CONNECTS)
    ssh_one_ms, ssh_one_cpu = _timed_with_cpu(ssh_one, CONNECTS)
    found_ms, found_cpu = _timed_with_cpu(discover, GROUP_CONNECTS)
    group_ms, group_cpu = _timed_with_cpu(group, GROUP_CONNECTS)
    ssh_ms, ssh_cpu = _timed_with_cpu(ssh_all, GROUP_CONNECTS)
    one_row = section.add(
        "one host: Runtime('host-1') + cleanup", _ms(one_ms), reference=True, note=_cores(one_cpu)
    )
    found_row = section.add(
        f"ours: RuntimeManager() discovers + connects {HOSTS}, + cleanup",
        _ms(found_ms),
        ours=True,
        label="manager",
        note=_cores(found_cpu),
    )
    section.add(
        f"ours: RuntimeGroup(hosts={HOSTS} hosts) + cleanup",
        _ms(group_ms),
        ours=True,
        label="group",
        note=_cores(group_cpu),
    )
    ssh_one_row = section.add(
        "one `ssh host-1 true`", _ms(ssh_one_ms), reference=True, note=_cores(ssh_one_cpu)
    )
    ssh_all_row = section.add(
        f"{HOSTS} x `ssh host true` at once (the machine's own pace)",
        _ms(ssh_ms),
        note=_cores(ssh_cpu),
    )
    ratio = found_row.stats["median"] / one_row.stats["median"]
    openssh = ssh_all_row.stats["median"] / ssh_one_row.stats["median"]
    report.notes.append(
        f"connect: the {HOSTS} hosts' sshd, login shells and agents run on this machine's "
        f"{os.cpu_count()} cores with the client: {found_cpu:.2f} cores busy on average "
        f"during discovery (CPU-bound when near {os.cpu_count()}, serialized when near 1; "
        "other users' load counts too). OpenSSH itself: "
        f"{HOSTS} x `ssh host true` at once took {openssh:.1f}x one; ours {ratio:.1f}x one."
    )
    return ratio


def _cores(cores: float) -> str:
    return f"{cores:.2f} cores busy"


# --- broadcast -------------------------------------------------------------------------


def measure_broadcast(
    report: Report, bed: SshBed, group: RuntimeGroup, args: argparse.Namespace
) -> float:
    """``run_command("true")`` on every host, waiting for all, against fabric."""
    section = report.section(
        f"broadcast run_command('true'), {HOSTS} hosts", "ms", higher_is_better=False
    )

    def ours() -> None:
        task = RuntimeTask("true").run_command("true")
        tasks = group.execute_task(task, broadcast=True, execute_async=False)
        assert isinstance(tasks, list) and len(tasks) == HOSTS

    group.clear_tasks()
    row = section.add(
        "ours: group.execute_task(..., broadcast=True, execute_async=False)",
        _ms(time_calls(ours, BROADCASTS, warmup=3)),
        ours=True,
        label="group",
    )
    group.clear_tasks()
    if "fabric" in args.skip:
        return float("nan")
    import fabric

    peers = fabric.ThreadingGroup(*[host.name for host in bed.hosts], config=fabric_config(bed))
    try:
        count = BROADCASTS if args.full else PEER_BROADCASTS
        runs = time_calls(lambda: peers.run("true", hide=True), count, warmup=1)
        peer = section.add("fabric ThreadingGroup.run('true'), connected", _ms(runs))
    finally:
        peers.close()
    return section.advantage(row, peer)


# --- ports -----------------------------------------------------------------------------


def measure_ports(
    report: Report, bed: SshBed, group: RuntimeGroup, args: argparse.Namespace
) -> float:
    """has_free_port over every host against lazycluster's way of asking."""
    section = report.section(f"has_free_port, {HOSTS} hosts", "ms", higher_is_better=False)
    port = group.get_free_port(list(range(30000, 30100)))
    row = section.add(
        "ours: group.has_free_port(port)",
        _ms(time_calls(lambda: group.has_free_port(port), PORT_CHECKS, warmup=3)),
        ours=True,
        label="group",
    )
    single = group.get_runtime("host-1")
    section.add(
        "ours: one runtime's has_free_port (one host)",
        _ms(time_calls(lambda: single.has_free_port(port), PORT_CHECKS, warmup=3)),
        reference=True,
    )
    if "lazycluster" in args.skip:
        return float("nan")
    import fabric

    config = fabric_config(bed)
    command = _LAZYCLUSTER_CHECK.format(port=port)

    def lazycluster_way() -> None:
        free = True
        for host in bed.hosts:  # its RuntimeGroup.has_free_port: host after host
            with fabric.Connection(host.name, config=config) as connection:
                result = connection.run(command, hide=True)
            free = free and bool(result.stdout)
        assert free

    count = PORT_CHECKS if args.full else PEER_PORT_CHECKS
    peer = section.add(
        "lazycluster's way: a new SSH connection per host, one host after another",
        _ms(time_calls(lazycluster_way, count, warmup=0)),
        note="emulated with fabric, as its Runtime.has_free_port runs it",
    )
    return section.advantage(row, peer)


# --- main ------------------------------------------------------------------------------


def main() -> None:
    """Run every part not skipped; print the report; write the JSON if asked."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0], quick_skips=("lazycluster",))
    if args.quick:
        _benchlib.shrink(
            globals(),
            HOSTS=3,
            CONNECTS=1,
            GROUP_CONNECTS=1,
            BROADCASTS=1,
            PEER_BROADCASTS=1,
            PORT_CHECKS=1,
            PEER_PORT_CHECKS=1,
        )
    _benchlib.quiet_logging()
    report = Report("bench_groups.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    ratios: dict[str, float] = {}
    with ssh_bed(HOSTS) as bed:
        if "connect" not in args.skip:
            ratios["connect"] = measure_connect(report, bed)
        if {"broadcast", "ports"} - args.skip:
            names = [host.name for host in bed.hosts]
            with RuntimeGroup(hosts=names, connection_kwargs=bed.connection_kwargs) as group:
                if "broadcast" not in args.skip:
                    ratios["broadcast"] = measure_broadcast(report, bed, group, args)
                if "ports" not in args.skip:
                    ratios["ports"] = measure_ports(report, bed, group, args)
    if "connect" in ratios:
        value = ratios["connect"]
        report.target(
            f"discovery + connect of {HOSTS} hosts / one host's connect",
            value,
            "under 3x",
            value < 3,
        )
    if "broadcast" in ratios:
        report.target(
            "broadcast: fabric ThreadingGroup / ours",
            ratios["broadcast"],
            "above 1x",
            ratios["broadcast"] > 1,
        )
    if "ports" in ratios:
        report.target(
            "has_free_port: lazycluster's way / ours", ratios["ports"], "any (a real run)", True
        )
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
