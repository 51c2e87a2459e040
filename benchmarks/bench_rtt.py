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
- a group of 10 hosts connecting (``RuntimeGroup``) against one host's connect.

Then the issue's budgets as met or MISSED. PARTS for ``--skip``: connect, calls,
modules, tunnel, transfer, tree, group. ``--quick`` (``BENCH_QUICK=1``): one sample each,
5 MB, 3 hosts.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
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
from actorcluster import Runtime, RuntimeGroup, RuntimeTask
from bench_transfer import make_tree, manifest

if TYPE_CHECKING:
    from collections.abc import Callable

    from latency_relay import LatencyRelay
    from sshbed import SshBed

SAMPLES = 5
TRANSFER_BYTES = 200 * 1000 * 1000
TREE_FILES = 2000
GROUP_HOSTS = 10
MODULES = 20
QUIET = {"heartbeat_interval": 600.0, "heartbeat_timeout": 1200.0}
"""Heartbeats slowed down, so that none falls into a count."""
MB = 1e6
_names = itertools.count()


class Measured:
    """One operation: its times (ms) and round trips, counted each time."""

    def __init__(self, name: str, who: str) -> None:
        self.name = name
        self.who = who
        self.ms: list[float] = []
        self.trips: list[float] = []

    def run(self, relay: LatencyRelay, action: Callable[[], object], samples: int) -> Measured:
        def timed() -> None:
            began = time.perf_counter()
            action()
            self.ms.append((time.perf_counter() - began) * 1000)

        for _ in range(samples):
            self.trips.append(relay.count(timed))
        return self

    @property
    def median_trips(self) -> float:
        return statistics.median(self.trips)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)


def _relay(bed: SshBed, index: int = 0) -> LatencyRelay:
    relay = bed.hosts[index].relay
    assert relay is not None, "the bed has no relay (--rtt 0?)"
    return relay


def _kwargs(bed: SshBed) -> dict[str, Any]:
    return {**bed.connection_kwargs, **QUIET}


def _run(argv: list[str], timeout: float = 120) -> None:
    subprocess.run(argv, check=True, timeout=timeout, capture_output=True)


# --- the parts -----------------------------------------------------------------------


def connect(bed: SshBed, rows: list[Measured]) -> None:
    relay = _relay(bed)

    def ours() -> None:
        Runtime("host-1", connection_kwargs=_kwargs(bed)).cleanup()

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
            relay, lambda: _run(ssh_argv(bed, "host-1", "true")), SAMPLES
        )
    )
    rows.append(
        Measured("connect until ready", "paramiko connect + exec").run(
            relay, paramiko_once, SAMPLES
        )
    )


def calls(bed: SshBed, rows: list[Measured]) -> None:
    relay = _relay(bed)
    with Runtime("host-1", connection_kwargs=_kwargs(bed)) as rt:
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
                relay, lambda: _run(ssh_argv(bed, *options, "host-1", "true")), SAMPLES
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
    relay = _relay(bed)
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rttmod-") as folder,
        Runtime("host-1", connection_kwargs=_kwargs(bed)) as rt,
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
    relay = _relay(bed)
    server = _echo_server()
    target = server.getsockname()[1]
    try:
        with Runtime("host-1", connection_kwargs=_kwargs(bed)) as rt:
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


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def transfer(bed: SshBed, report: Report) -> None:
    samples = 1 if SAMPLES == 1 else 3
    section = report.section(
        f"{TRANSFER_BYTES / MB:g} MB at {bed.rtt_ms:g} ms RTT", "MB/s", higher_is_better=True
    )
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rttxfer-") as folder,
        Runtime("host-1", connection_kwargs=_kwargs(bed)) as rt,
    ):
        work = Path(folder)
        source = work / "big.bin"
        with source.open("wb") as file:
            for _ in range(TRANSFER_BYTES // (1 << 20)):
                file.write(os.urandom(1 << 20))
            file.write(os.urandom(TRANSFER_BYTES % (1 << 20)))
        expected = _sha(source)
        scp = ["scp", "-q", "-F", str(bed.ssh_config)]
        ways: dict[str, list[float]] = {
            k: [] for k in ("ours send", "scp send", "ours get", "scp get")
        }
        for repeat in range(samples):
            remote = str(work / f"there-{repeat}.bin")
            back = work / f"back-{repeat}.bin"
            actions: list[tuple[str, Callable[[], object]]] = [
                ("ours send", lambda r=remote: rt.send_file(str(source), r)),
                ("scp send", lambda r=remote: _run([*scp, str(source), f"host-1:{r}"])),
                ("ours get", lambda r=remote, b=back: rt.get_file(r, str(b))),
                ("scp get", lambda r=remote, b=back: _run([*scp, f"host-1:{r}", str(b)])),
            ]
            for name, action in actions:
                began = time.perf_counter()
                action()
                ways[name].append(TRANSFER_BYTES / MB / (time.perf_counter() - began))
                checked = Path(remote) if name.endswith("send") else back
                if _sha(checked) != expected:
                    raise RuntimeError(f"{name}: the copy differs from the source")
                if name.endswith("get"):
                    back.unlink()
            Path(remote).unlink()
    for name, values in ways.items():
        section.add(name, values, ours=name.startswith("ours"), label=name)
    for way in ("send", "get"):
        ours = statistics.median(ways[f"ours {way}"])
        scp = statistics.median(ways[f"scp {way}"])
        report.target(
            f"{way} {TRANSFER_BYTES / MB:g} MB: ours / scp", ours / scp, ">= 1x", ours >= scp
        )


def tree(bed: SshBed, report: Report) -> None:
    """A folder of TREE_FILES small files each way: ours against ``scp -r``."""
    section = report.section(
        f"{TREE_FILES:,} files of 2-8 KB at {bed.rtt_ms:g} ms RTT", "files/s", higher_is_better=True
    )
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rtttree-") as folder,
        Runtime("host-1", connection_kwargs=_kwargs(bed)) as rt,
    ):
        work = Path(folder)
        source = work / "tree"
        make_tree(source, TREE_FILES)
        expected = manifest(source)
        scp = ["scp", "-q", "-r", "-F", str(bed.ssh_config)]
        ways: dict[str, list[float]] = {
            k: [] for k in ("ours send", "scp -r send", "ours get", "scp -r get")
        }
        for repeat in range(1):  # scp -r pays round trips per file: minutes at 20 ms
            remote, back = work / f"there-{repeat}", work / f"back-{repeat}"
            actions: list[tuple[str, Callable[[], object]]] = [
                ("ours send", lambda r=remote: rt.send_file(str(source), str(r))),
                ("scp -r send", lambda r=remote: _run([*scp, str(source), f"host-1:{r}"], 1800)),
                ("ours get", lambda r=remote, b=back: rt.get_file(str(r), str(b))),
                ("scp -r get", lambda r=remote, b=back: _run([*scp, f"host-1:{r}", str(b)], 1800)),
            ]
            for name, action in actions:
                began = time.perf_counter()
                action()
                ways[name].append(TREE_FILES / (time.perf_counter() - began))
                checked = remote if name.endswith("send") else back
                if manifest(checked) != expected:
                    raise RuntimeError(f"{name}: the copy differs from the source")
                if name != "scp -r send":  # what scp sent is what both gets fetch
                    shutil.rmtree(checked)
            shutil.rmtree(remote)
    for name, values in ways.items():
        section.add(name, values, ours=name.startswith("ours"), label=name)
    for way in ("send", "get"):
        ours = statistics.median(ways[f"ours {way}"])
        theirs = statistics.median(ways[f"scp -r {way}"])
        report.target(
            f"{way} {TREE_FILES:,} small files: ours / scp -r",
            ours / theirs,
            ">= 1x",
            ours >= theirs,
        )


def group(report: Report) -> None:
    with ssh_bed(GROUP_HOSTS) as bed:
        names = [host.name for host in bed.hosts]
        kwargs = _kwargs(bed)
        Runtime("host-1", connection_kwargs=kwargs).cleanup()
        one, many = [], []
        relays = [_relay(bed, index) for index in range(len(names))]
        trips_one: list[float] = []
        trips_many: list[float] = []
        for _ in range(SAMPLES):
            began = time.perf_counter()
            trips_one.append(
                relays[0].count(lambda: Runtime("host-1", connection_kwargs=kwargs).cleanup())
            )
            one.append((time.perf_counter() - began) * 1000)
            befores = [relay.settled() for relay in relays]
            began = time.perf_counter()
            RuntimeGroup(hosts=names, connection_kwargs=kwargs).cleanup()
            many.append((time.perf_counter() - began) * 1000)
            afters = [relay.settled() for relay in relays]
            gains = [(a["depth"] - b["depth"]) / 2 for a, b in zip(afters, befores, strict=True)]
            trips_many.append(max(gains))
        slowest = statistics.median(trips_many)
        report.notes.append(
            f"group of {GROUP_HOSTS}: round trips of its slowest host {slowest:g}"
            f", one host alone {statistics.median(trips_one):g} (the connects overlap: what is "
            "left of the time is CPU, the hosts' sshd and agents sharing this machine's cores)"
        )
    section = report.section(f"connect at {bed.rtt_ms:g} ms RTT", "ms", higher_is_better=False)
    section.add("one Runtime() + cleanup", one, ours=True, label="one")
    section.add(f"RuntimeGroup of {GROUP_HOSTS} + cleanup", many, ours=True, label="group")
    ratio = statistics.median(many) / statistics.median(one)
    report.target(f"group of {GROUP_HOSTS} / one host's connect", ratio, "<= 1.2x", ratio <= 1.2)


# --- main --------------------------------------------------------------------------------


def _table(rows: list[Measured], rtt: float) -> str:
    lines = [
        f"== round trips at {rtt:g} ms RTT (counted by the relay; median of {SAMPLES})",
        f"  {'operation':44} {'who':26} {'round trips':>11} {'ms':>9} {'ms/RTT':>7}",
    ]
    for row in rows:
        lines.append(
            f"  {row.name:44} {row.who:26} {row.median_trips:>11g} {row.median_ms:>9.1f} "
            f"{row.median_ms / rtt:>7.1f}"
        )
    return "\n".join(lines)


def _find(rows: list[Measured], name: str, who: str) -> Measured | None:
    return next((r for r in rows if r.name.startswith(name) and r.who.startswith(who)), None)


def _budgets(report: Report, rows: list[Measured]) -> None:
    ours, ssh = _find(rows, "connect", "ours"), _find(rows, "connect", "ssh")
    if ours and ssh:
        report.target(
            "Runtime() ready, round trips over `ssh host true`'s",
            ours.median_trips - ssh.median_trips,
            "<= +1",
            ours.median_trips <= ssh.median_trips + 1,
        )
    for name in ("warm run_command", "warm execute_function"):
        row = _find(rows, name, "ours")
        if row:
            report.target(f"{name}: round trips", row.median_trips, "1", row.median_trips <= 1)
    shipped, plain = _find(rows, "function needing", "ours"), _find(rows, "warm execute", "ours")
    if shipped and plain:
        extra = shipped.median_trips - plain.median_trips
        report.target(
            f"function needing {MODULES} client-only modules: round trips more", extra, "<= 2",
            extra <= 2,
        )  # fmt: skip
    mine, theirs = _find(rows, "new connection", "ours"), _find(rows, "new connection", "ssh")
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
                print(_table(rows[-1:], args.rtt).splitlines()[-1], flush=True)
        if "transfer" not in args.skip:
            transfer(bed, report)
        if "tree" not in args.skip:
            tree(bed, report)
    if "group" not in args.skip:
        group(report)
    _budgets(report, rows)
    print()
    print(_table(rows, args.rtt))
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
