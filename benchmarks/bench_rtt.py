"""Round trips at a real network's latency (issue 25): ours, OpenSSH and paramiko.

``python3 benchmarks/bench_rtt.py [--rtt MS] [--json PATH] [--quick] [--skip PARTS]``
starts a private bed whose hosts are reached through a relay adding ``--rtt`` ms of
round-trip time (default 20; ``tests/latency_relay.py``), and for each operation prints
its median time and the round trips it took, **counted** by the relay (causally, so the
machine's load does not change them), with OpenSSH and paramiko side by side in the
same run:

- connect: ``Runtime(host)`` until ready, ``ssh host true``, paramiko connect + exec;
- warm calls: ``run_command("true")``, ``execute_function(f)``, paramiko ``exec_command``
  on an open connection, ``ssh host true`` through a ControlMaster;
- a function needing a client-only package of 20 modules (a fresh one each time);
- a new connection through a tunnel (``expose_port_from_runtime``) and through ``ssh -L``;
- ``send_file``/``get_file`` of 200 MB against ``scp`` (MB/s), and of a folder of 2,000
  files of 2-8 KB against ``scp -r`` (files/s);
- a group of 10 hosts connecting (``RuntimeGroup``) against one host's connect, with
  the CPU each connect took here and on the host (on the bed, every host's sshd, shell
  and agent share this machine's CPUs: what that alone costs the group is printed),
  and ``ssh host python3 -c pass`` on every host at once against one host (the bed's
  own ratio for like work, in the same run).

Then the issue's budgets as met or MISSED. PARTS for ``--skip``: connect, calls,
modules, tunnel, transfer, tree, group. ``--quick`` (``BENCH_QUICK=1``): one sample each,
5 MB, 3 hosts.
"""

from __future__ import annotations

import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed
from _peers import control_master, paramiko_client, paramiko_exec, ssh_argv
from _rtt_transfers import transfer, tree
from _rttlib import Measured, find, relay_of, run, runtime_kwargs, table
from actorcluster import Runtime, RuntimeGroup, RuntimeTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

SAMPLES = 5
TRANSFER_BYTES = 200 * 1000 * 1000
TREE_FILES = 2000
GROUP_HOSTS = 10
MODULES = 20
_names = itertools.count()


# --- the parts -----------------------------------------------------------------------


def connect(bed: SshBed, rows: list[Measured]) -> None:
    relay = relay_of(bed)

    def ours() -> None:
        Runtime("host-1", connection_kwargs=runtime_kwargs(bed)).cleanup()

    def paramiko_once() -> None:
        client = paramiko_client(bed)
        try:
            paramiko_exec(client, "true")
        finally:
            client.close()

    ours()  # the first also imports and builds the agent
    rows.append(Measured("connect until ready", "ours: Runtime()").run(relay, ours, SAMPLES))
    rows.append(
        Measured("connect until ready", "ssh host true").run(
            relay, lambda: run(ssh_argv(bed, "host-1", "true")), SAMPLES
        )
    )
    rows.append(
        Measured("connect until ready", "paramiko connect + exec").run(
            relay, paramiko_once, SAMPLES
        )
    )


def calls(bed: SshBed, rows: list[Measured]) -> None:
    relay = relay_of(bed)
    with Runtime("host-1", connection_kwargs=runtime_kwargs(bed)) as rt:
        rt.execute_function(lambda: 0)
        rows.append(
            Measured("warm run_command('true')", "ours").run(
                relay,
                lambda: rt.execute_task(RuntimeTask().run_command("true"), execute_async=False),
                SAMPLES,
            )
        )
        rows.append(
            Measured("warm execute_function(f)", "ours").run(
                relay, lambda: rt.execute_function(lambda: 1), SAMPLES
            )
        )
    client = paramiko_client(bed)
    try:
        rows.append(
            Measured("warm run_command('true')", "paramiko exec_command").run(
                relay, lambda: paramiko_exec(client, "true"), SAMPLES
            )
        )
    finally:
        client.close()
    with (
        tempfile.TemporaryDirectory(prefix="acbench-cm-") as folder,
        control_master(bed, "host-1", Path(folder)) as options,
    ):
        rows.append(
            Measured("warm run_command('true')", "ssh ControlMaster").run(
                relay, lambda: run(ssh_argv(bed, *options, "host-1", "true")), SAMPLES
            )
        )


def _write_package(root: Path, name: str) -> None:
    parts = [f"part{n}" for n in range(MODULES - 1)]
    package = root / name
    package.mkdir(parents=True)
    for number, part in enumerate(parts):
        (package / f"{part}.py").write_text(f"VALUE = {number}\n")
    (package / "__init__.py").write_text(
        "".join(f"from . import {part}\n" for part in parts)
        + "TOTAL = "
        + " + ".join(f"{part}.VALUE" for part in parts)
        + "\n"
    )


def _importer(name: str) -> Callable[[], int]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(f"def use():\n    import {name}\n    return {name}.TOTAL\n", namespace)
    function: Callable[[], int] = namespace["use"]
    return function


def modules(bed: SshBed, rows: list[Measured]) -> None:
    relay = relay_of(bed)
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rttmod-") as folder,
        Runtime("host-1", connection_kwargs=runtime_kwargs(bed)) as rt,
    ):
        sys.path.insert(0, folder)
        try:
            rt.execute_function(lambda: 0)

            def first_call() -> None:
                name = f"rttpkg{next(_names)}"
                _write_package(Path(folder), name)
                returned = next(iter(rt.execute_function(_importer(name)).function_returns))
                assert returned == sum(range(MODULES - 1))

            rows.append(
                Measured(f"function needing {MODULES} client-only modules", "ours").run(
                    relay, first_call, SAMPLES
                )
            )
        finally:
            sys.path.remove(folder)


def _echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1000):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server


def _exchange(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tunnel(bed: SshBed, rows: list[Measured]) -> None:
    relay = relay_of(bed)
    server = _echo_server()
    target = server.getsockname()[1]
    try:
        with Runtime("host-1", connection_kwargs=runtime_kwargs(bed)) as rt:
            ours_port = _free_port()
            rt.expose_port_from_runtime(target, ours_port)
            _exchange(ours_port)
            rows.append(
                Measured("new connection through -L + 1 exchange", "ours").run(
                    relay, lambda: _exchange(ours_port), SAMPLES
                )
            )
        theirs_port = _free_port()
        forward = f"127.0.0.1:{theirs_port}:127.0.0.1:{target}"
        ssh = subprocess.Popen(ssh_argv(bed, "-N", "-L", forward, "host-1"))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _exchange(theirs_port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            rows.append(
                Measured("new connection through -L + 1 exchange", "ssh -N -L").run(
                    relay, lambda: _exchange(theirs_port), SAMPLES
                )
            )
        finally:
            ssh.kill()
            ssh.wait(timeout=10)
    finally:
        server.close()


def group(report: Report) -> None:
    """A group of GROUP_HOSTS against one host: times, round trips of its slowest host,
    and where the CPU went (this process's; the hosts' sshd, shells and agents, which on
    the bed share this machine's cores); ``ssh host python3`` on every host at once
    against one host, the bed's own ratio for like work, in the same run."""
    with ssh_bed(GROUP_HOSTS) as bed:
        names = [host.name for host in bed.hosts]
        kwargs = runtime_kwargs(bed)
        Runtime("host-1", connection_kwargs=kwargs).cleanup()
        one, many, peer_one, peer_many = [], [], [], []
        cpu_one, cpu_many, host_one, host_many = [], [], [], []
        relays = [relay_of(bed, index) for index in range(len(names))]
        trips_one: list[float] = []
        trips_many: list[float] = []
        for _ in range(SAMPLES):
            with Cpu(bed) as cpu:
                trips_one.append(
                    relays[0].count(lambda: Runtime("host-1", connection_kwargs=kwargs).cleanup())
                )
            one.append(cpu.wall_ms)
            cpu_one.append(cpu.client_ms)
            host_one.append(cpu.hosts_ms)
            befores = [relay.settled() for relay in relays]
            with Cpu(bed) as cpu:
                RuntimeGroup(hosts=names, connection_kwargs=kwargs).cleanup()
            many.append(cpu.wall_ms)
            cpu_many.append(cpu.client_ms / len(names))
            host_many.append(cpu.hosts_ms / len(names))
            afters = [relay.settled() for relay in relays]
            gains = [(a["depth"] - b["depth"]) / 2 for a, b in zip(afters, befores, strict=True)]
            trips_many.append(max(gains))
            peer_one.append(_timed(lambda: _ssh_python(bed, names[:1])))
            peer_many.append(_timed(lambda: _ssh_python(bed, names)))
    section = report.section(f"connect at {bed.rtt_ms:g} ms RTT", "ms", higher_is_better=False)
    section.add("one Runtime() + cleanup", one, ours=True, label="one")
    section.add(f"RuntimeGroup of {GROUP_HOSTS} + cleanup", many, ours=True, label="group")
    section.add("ssh host python3 -c pass, one host", peer_one, reference=True)
    section.add(f"ssh host python3 -c pass, {GROUP_HOSTS} hosts at once", peer_many, reference=True)
    median = statistics.median
    ratio = median(many) / median(one)
    bed_ratio = median(peer_many) / median(peer_one)
    floor = GROUP_HOSTS * median(host_many) / (os.cpu_count() or 1) / median(one)
    report.notes.append(
        f"group of {GROUP_HOSTS}: round trips of its slowest host {median(trips_many):g}, one "
        f"host alone {median(trips_one):g} (the connects overlap). CPU per connect: this "
        f"process {median(cpu_one):.0f} ms alone, {median(cpu_many):.0f} ms in the group; "
        f"the host's sshd, shell and agent {median(host_one):.0f} ms alone, "
        f"{median(host_many):.0f} ms in the group. On the bed every host's share runs on "
        f"this machine's {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}): the group "
        f"cannot take less than {floor:.2f}x one connect; `ssh host python3` on "
        f"{GROUP_HOSTS} hosts at once takes {bed_ratio:.2f}x one host here"
    )
    report.target(f"group of {GROUP_HOSTS} / one host's connect", ratio, "<= 1.2x", ratio <= 1.2)
    report.target(
        f"group of {GROUP_HOSTS} / one, against ssh's ratio on the same bed",
        ratio / bed_ratio,
        "<= 1.2x",
        ratio <= 1.2 * bed_ratio,
    )


class Cpu:
    """Wall time, this process's CPU time, and the bed's hosts' CPU time (their sshd
    listeners' reaped children: sessions, shells, agents) over a ``with`` block."""

    def __init__(self, bed: SshBed) -> None:
        self._bed = bed

    def __enter__(self) -> Cpu:
        self._hosts = _hosts_cpu(self._bed)
        self._client = time.process_time()
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall_ms = (time.perf_counter() - self._began) * 1000
        self.client_ms = (time.process_time() - self._client) * 1000
        deadline = time.monotonic() + 10  # the sessions end just after cleanup
        while time.monotonic() < deadline and any(h.session_pids() for h in self._bed.hosts):
            time.sleep(0.05)
        self.hosts_ms = (_hosts_cpu(self._bed) - self._hosts) * 1000


def _hosts_cpu(bed: SshBed) -> float:
    """CPU seconds the bed's sshd listeners' reaped children used so far."""
    total = 0.0
    for host in bed.hosts:
        if host.pid is not None:
            fields = Path(f"/proc/{host.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def _ssh_python(bed: SshBed, hosts: list[str]) -> None:
    """``ssh host python3 -c pass`` on ``hosts`` at once (each must succeed)."""
    procs = [
        subprocess.Popen(ssh_argv(bed, host, "python3 -c pass"), stdout=subprocess.DEVNULL)
        for host in hosts
    ]
    for proc in procs:
        if proc.wait(120) != 0:
            raise RuntimeError(f"ssh python3 failed: {proc.args}")


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


# --- main --------------------------------------------------------------------------------


def _budgets(report: Report, rows: list[Measured]) -> None:
    ours, ssh = find(rows, "connect", "ours"), find(rows, "connect", "ssh")
    if ours and ssh:
        report.target(
            "Runtime() ready, round trips over `ssh host true`'s",
            ours.median_trips - ssh.median_trips,
            "<= +1",
            ours.median_trips <= ssh.median_trips + 1,
        )
    for name in ("warm run_command", "warm execute_function"):
        row = find(rows, name, "ours")
        if row:
            report.target(f"{name}: round trips", row.median_trips, "1", row.median_trips <= 1)
    shipped, plain = find(rows, "function needing", "ours"), find(rows, "warm execute", "ours")
    if shipped and plain:
        extra = shipped.median_trips - plain.median_trips
        report.target(
            f"function needing {MODULES} client-only modules: round trips more", extra, "<= 2",
            extra <= 2,
        )  # fmt: skip
    mine, theirs = find(rows, "new connection", "ours"), find(rows, "new connection", "ssh")
    if mine and theirs:
        report.target(
            "tunnel: new connection + exchange, round trips (ours / ssh -L)",
            mine.median_trips,
            f"<= ssh -L's {theirs.median_trips:g}",
            mine.median_trips <= theirs.median_trips,
        )


def main() -> None:
    """Run the parts not skipped and print the table and the budgets."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0])
    if args.rtt <= 0:
        args.rtt = _benchlib.RTT_MS = 20.0
    if args.quick:
        _benchlib.shrink(
            globals(), SAMPLES=1, TRANSFER_BYTES=5 * 1000 * 1000, GROUP_HOSTS=3, TREE_FILES=20
        )
    _benchlib.quiet_logging()
    report = Report("bench_rtt.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    rows: list[Measured] = []
    with ssh_bed(1) as bed:
        parts = {"connect": connect, "calls": calls, "modules": modules, "tunnel": tunnel}
        for part, run in parts.items():
            if part not in args.skip:
                run(bed, rows)
                print(table(rows[-1:], args.rtt, SAMPLES).splitlines()[-1], flush=True)
        if "transfer" not in args.skip:
            transfer(bed, report, TRANSFER_BYTES, 1 if SAMPLES == 1 else 3)
        if "tree" not in args.skip:
            tree(bed, report, TREE_FILES)
    if "group" not in args.skip:
        group(report)
    _budgets(report, rows)
    print()
    print(table(rows, args.rtt, SAMPLES))
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
