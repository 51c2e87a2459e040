"""Tunnel speed against OpenSSH's ``ssh -N -L`` / ``ssh -N -R``, in one run.

``python3 benchmarks/bench_tunnels.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of one sshd host and, between the same two ends, with our default carrier
(``ssh -N`` where it can log in as the runtime, see ``actorcluster.tunnels.carrier``),
with the paramiko relay (``carrier="paramiko"``: relays over the runtime's one
connection, the fallback) and with ``ssh -N -L``/``ssh -N -R`` themselves:

* moves 1 GB through ``expose_port_from_runtime`` (``-L``) and
  ``expose_port_to_runtime`` (``-R``), each way ("push": the tunnel's client sends to
  the service; "pull": the service sends to the client), alternating;
* opens 200 short connections through one tunnel, 20 at a time, and times each one's
  set-up (connect until the first byte came back through the service), in four rounds
  (ours first, last, first, last: 800 samples each);
* opens 50 connections one at a time, the same way (a client that connects, asks,
  closes, and connects again).

Every ssh uses the bed's ssh_config (``-F``) and our cipher (aes128-gcm), so only the
relays differ. Clients and services run in processes of their own. Beside each rate,
the CPU the relay used per GB: for ours this process (but its main thread, which only
starts the clients) plus its ``ssh`` child (if any), for OpenSSH the ``ssh`` process;
beside each set-up time, the relay's CPU per connection. On a small, shared machine
the rates follow the load, the CPU cost much less so. MB is 10^6 bytes. PARTS for
``--skip``: throughput, latency, serial, relay (the paramiko relay's rows). ``--full``
repeats each transfer 3 times (default once). ``--quick`` (``BENCH_QUICK=1``): 5 MB
transfers, a few connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed
from actorcluster import Runtime

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from _benchlib import Row, Section
    from sshbed import SshBed

GB = 1_000_000_000
MB = 1e6
CIPHER = "aes128-gcm@openssh.com"
SHORT_CONNECTIONS = 200
AT_ONCE = 20
ROUNDS = 2  # of each order, ours first and ours last: 4 x 200 connections each
SERIAL_CONNECTIONS = 50
TRANSFER = GB
"""Bytes moved by each throughput transfer."""
EVENTS = _benchlib.EventCounter()
_default: list[str] = []

PEER = r"""
import socket, struct, sys, threading, time, json, concurrent.futures
def serve(port, handle):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port)); ls.listen(256); print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()
def sink(c):
    n, buf = 0, bytearray(1 << 20)
    while k := c.recv_into(buf): n += k
    c.sendall(struct.pack(">Q", n)); c.close()
def source(c):
    head = b""
    while len(head) < 8: head += c.recv(8 - len(head)) or b"\0" * 8
    n, chunk = struct.unpack(">Q", head)[0], memoryview(b"\xa5" * (1 << 20))
    while n > 0:
        c.sendall(chunk[:min(n, len(chunk))]); n -= len(chunk)
    c.close()
def echo(c):
    while d := c.recv(65536): c.sendall(d)
    c.close()
def push(port, n):
    c = socket.create_connection(("127.0.0.1", port)); chunk = memoryview(b"\x5a" * (1 << 20))
    t = time.perf_counter(); left = n
    while left > 0:
        c.sendall(chunk[:min(left, len(chunk))]); left -= len(chunk)
    c.shutdown(socket.SHUT_WR); got = struct.unpack(">Q", c.recv(8))[0]
    assert got == n, (got, n); print(time.perf_counter() - t)
def pull(port, n):
    c = socket.create_connection(("127.0.0.1", port)); buf = bytearray(1 << 20)
    t = time.perf_counter(); c.sendall(struct.pack(">Q", n)); got = 0
    while k := c.recv_into(buf): got += k
    assert got == n, (got, n); print(time.perf_counter() - t)
def one(port):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), 10) as c:
        c.sendall(b"x"); assert c.recv(1) == b"x"
    return time.perf_counter() - t
def latency(port, count, at_once):
    with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
        print(json.dumps(list(pool.map(one, [port] * count))))
mode, port = sys.argv[1], int(sys.argv[2])
if mode in ("sink", "source", "echo"): serve(port, globals()[mode])
elif mode == "latency": latency(port, int(sys.argv[3]), int(sys.argv[4]))
else: globals()[mode](port, int(sys.argv[3]))
"""


def free_port() -> int:
    """A port free on 127.0.0.1 now (the bed's hosts share this loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def service(mode: str) -> Iterator[int]:
    """A sink, source or echo service in a process of its own; yields its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", PEER, mode, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def client(*args: object, timeout: float = 120.0) -> str:
    """Run a client of the peer script; its stdout."""
    argv = [sys.executable, "-c", PEER, *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout.strip()


CpuClock = Callable[[], float]
"""Seconds of CPU the relay has used so far."""
Opener = Callable[[str, int, int], "contextlib.AbstractContextManager[CpuClock]"]
"""Opens a tunnel (flag, listen port, target port) for a block; yields its CPU clock."""


def _task_cpu(task: Path) -> float:
    """CPU seconds a thread has run (``schedstat``: nanoseconds, not clock ticks)."""
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except OSError:  # it just ended
        return 0.0


def _own_cpu() -> float:
    """CPU seconds of this process's threads but the main one, which only starts the
    clients (a fork of this process costs milliseconds that no relay spends)."""
    main = str(threading.main_thread().native_id)
    tasks = Path("/proc/self/task").iterdir()
    return sum(_task_cpu(task) for task in tasks if task.name != main)


def _process_cpu(pid: int) -> float:
    """CPU seconds of a single-threaded process (``ssh``)."""
    return _task_cpu(Path(f"/proc/{pid}"))


def _ssh_children(port: int) -> list[int]:
    """This process's ``ssh`` children forwarding ``port``."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            forwards = any(f":{port}:".encode() in arg for arg in argv)
            if int(stat[1]) == os.getpid() and argv[0].endswith(b"ssh") and forwards:
                pids.append(int(proc.name))
    return pids


@contextlib.contextmanager
def ssh_forward(bed: SshBed, flag: str, listen: int, target: int) -> Iterator[CpuClock]:
    """``ssh -N -L/-R listen:127.0.0.1:target host-1`` until the block ends; yields its
    CPU clock."""
    argv = ["ssh", "-F", str(bed.ssh_config), "-N", "-o", "ExitOnForwardFailure=yes"]
    argv += ["-o", f"Ciphers={CIPHER}", flag, f"127.0.0.1:{listen}:127.0.0.1:{target}", "host-1"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        wait_listening(listen)
        yield lambda: _process_cpu(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def our_forward(
    rt: Runtime, flag: str, listen: int, target: int, carrier: str | None
) -> Iterator[CpuClock]:
    """The same tunnel through the runtime; yields the CPU clock of this process plus
    its ``ssh`` children that carry the tunnel (none for the paramiko relay)."""
    if flag == "-L":
        key = rt.expose_port_from_runtime(target, listen, carrier=carrier)
    else:
        key = rt.expose_port_to_runtime(target, listen, carrier=carrier)
    pids = _ssh_children(listen)
    try:
        yield lambda: _own_cpu() + sum(map(_process_cpu, pids))
    finally:
        rt.stop_process(key)


def _default_carrier(rt: Runtime) -> str:
    """The carrier a tunnel gets when its user names none, seen from outside: an
    ``ssh`` child forwarding the port (openssh) or none (the paramiko relay)."""
    if not _default:
        with service("echo") as target:
            listen = free_port()
            key = rt.expose_port_from_runtime(target, listen)
            try:
                _default.append("openssh" if _ssh_children(listen) else "paramiko")
            finally:
                rt.stop_process(key)
    return _default[0]


def openers(bed: SshBed, rt: Runtime, args: argparse.Namespace) -> list[tuple[str, Opener]]:
    """(name, opener) of ours (default, relay) and of ``ssh -N``."""
    default = _default_carrier(rt)
    rows: list[tuple[str, Opener]] = [
        (f"ours (default: {default})", lambda f, p, t: our_forward(rt, f, p, t, None)),
        ("ours (paramiko relay)", lambda f, p, t: our_forward(rt, f, p, t, "paramiko")),
        ("ssh -N", lambda f, p, t: ssh_forward(bed, f, p, t)),
    ]
    return [row for row in rows if "relay" not in row[0] or "relay" not in args.skip]


def _label(name: str) -> str:
    return name.rsplit("(", maxsplit=1)[-1].rstrip(")") if name.startswith("ours") else ""


def throughput(report: Report, bed: SshBed, rt: Runtime, args: argparse.Namespace) -> None:
    """1 GB (:data:`TRANSFER`) each way through -L and -R: ours (default, relay) and
    ssh, one after the other (with ``--full``, three times: in order, reversed, in order)."""
    carriers = openers(bed, rt, args)
    repeats = 3 if args.full else 1
    for flag in ("-L", "-R"):
        for way, mode in (("push", "sink"), ("pull", "source")):
            title = f"{flag} {way} {TRANSFER / MB:g} MB"
            section = report.section(title, "MB/s", higher_is_better=True)
            rates: dict[str, list[float]] = {name: [] for name, _ in carriers}
            cpu: dict[str, list[float]] = {name: [] for name, _ in carriers}
            with service(mode) as target:
                for repeat in range(repeats):  # ours first, then last, ...
                    for name, opener in carriers[:: -1 if repeat % 2 else 1]:
                        listen = free_port()
                        with opener(flag, listen, target) as clock:
                            before = clock()
                            seconds = float(client(way, listen, TRANSFER))
                            rates[name].append(TRANSFER / seconds / MB)
                            cpu[name].append((clock() - before) * GB / TRANSFER)
            for name, _ in carriers:
                note = f"CPU {min(cpu[name]):.2f} s/GB"
                section.add(
                    name, rates[name], ours=name.startswith("ours"), label=_label(name), note=note
                )
            check_throughput(report, section)


def _row(section: Section, start: str) -> Row | None:
    return next((row for row in section.rows if row.name.startswith(start)), None)


def check_throughput(report: Report, section: Section) -> None:
    """The issue's goals: the default carrier at 0.9x OpenSSH's rate or better; the
    paramiko relay (the fallback) at 0.5x or better. With ``--full``, the best of the
    three transfers of each (others' load only ever slows one down)."""
    peer = _row(section, "ssh -N")
    assert peer is not None
    for start, goal in (("ours (default", 0.9), ("ours (paramiko", 0.5)):
        ours = _row(section, start)
        if ours is not None:
            ratio = max(ours.values) / max(peer.values)
            best = " (best of each)" if len(ours.values) > 1 else ""
            what = f"{section.title}: {_label(ours.name)} / ssh{best}"
            report.target(what, ratio, f">= {goal}x", ratio >= goal)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]


def _set_up_times(
    opener: Opener, flag: str, target: int, count: int, at_once: int
) -> tuple[list[float], float]:
    """Set-up times (ms) of ``count`` connections, ``at_once`` at a time, through a new
    tunnel; and the relay's CPU per connection (ms)."""
    listen = free_port()
    with opener(flag, listen, target) as clock:
        client("latency", listen, at_once, at_once)  # warm-up
        before = clock()
        out = client("latency", listen, count, at_once)
        cpu = (clock() - before) * 1000 / count
    return [seconds * 1000 for seconds in json.loads(out)], cpu


def latency(report: Report, bed: SshBed, rt: Runtime, args: argparse.Namespace) -> None:
    """200 short connections, 20 at a time, through a new tunnel, in four rounds (ours
    first, last, first, last): set-up time each."""
    carriers = openers(bed, rt, args)
    for flag in ("-L", "-R"):
        title = f"{flag} set-up, {SHORT_CONNECTIONS} connections {AT_ONCE} at a time, x{2 * ROUNDS}"
        section = report.section(title, "ms", higher_is_better=False)
        rounds: dict[str, list[list[float]]] = {name: [] for name, _ in carriers}
        cpu: dict[str, list[float]] = {name: [] for name, _ in carriers}
        with service("echo") as target:
            for order in (carriers, carriers[::-1]) * ROUNDS:
                for name, opener in order:
                    values, per = _set_up_times(opener, flag, target, SHORT_CONNECTIONS, AT_ONCE)
                    rounds[name].append(values)
                    cpu[name].append(per)
        for name, _ in carriers:
            values = [value for one in rounds[name] for value in one]
            row = section.add(name, values, ours=name.startswith("ours"), label=_label(name))
            p50, p99 = _best_round(rounds[name])
            row.note = (
                f"p50 {row.stats['median']:.2f} ms, p99 {_p99(values):.2f} ms; best round "
                f"{p50:.2f} / {p99:.2f} ms; CPU {min(cpu[name]):.3f} ms/conn"
            )
        check_set_up(report, section, rounds)


def _best_round(rounds: list[list[float]]) -> tuple[float, float]:
    """The lowest p50 and the lowest p99 among rounds (of the issue's 200 connections)."""
    return min(map(statistics.median, rounds)), min(map(_p99, rounds))


def check_set_up(report: Report, section: Section, rounds: dict[str, list[list[float]]]) -> None:
    """The issue's goal: the default carrier's p50 and p99 no worse than ssh's, each
    carrier's best round of 200 against the other's (load only ever slows a round)."""
    ours = next(name for name in rounds if name.startswith("ours (default"))
    mine, theirs = _best_round(rounds[ours]), _best_round(rounds["ssh -N"])
    for index, what in enumerate(("p50", "p99")):
        ratio = mine[index] / theirs[index]
        title = f"{section.title}: {what} default / ssh (best round of each)"
        report.target(title, ratio, "<= 1.0x", ratio <= 1.0)


def serial(report: Report, bed: SshBed, rt: Runtime, args: argparse.Namespace) -> None:
    """50 connections one after the other (no target: shows sshd's Nagle on -R)."""
    carriers = openers(bed, rt, args)
    for flag in ("-L", "-R"):
        title = f"{flag} set-up, {SERIAL_CONNECTIONS} connections one at a time"
        section = report.section(title, "ms", higher_is_better=False)
        with service("echo") as target:
            for name, opener in carriers:
                values, per = _set_up_times(opener, flag, target, SERIAL_CONNECTIONS, 1)
                row = section.add(name, values, ours=name.startswith("ours"), label=_label(name))
                row.note = f"p99 {_p99(values):.2f} ms, CPU {per:.3f} ms/conn"


def main() -> None:
    """Run the parts not skipped and print the report."""
    args = _benchlib.bench_arguments(__doc__ or "")
    if args.quick:
        _benchlib.shrink(
            globals(),
            TRANSFER=5_000_000,
            SHORT_CONNECTIONS=4,
            AT_ONCE=2,
            ROUNDS=1,
            SERIAL_CONNECTIONS=2,
        )
    EVENTS.install()
    report = Report("bench_tunnels", notes=environment_notes())
    started = time.monotonic()
    with ssh_bed(1) as bed, Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        ours = EVENTS.last.get("ssh.connect.succeeded", {}).get("cipher", "?")
        report.notes.append(f"cipher: ours {ours}, ssh {CIPHER}")
        if "throughput" not in args.skip:
            throughput(report, bed, rt, args)
        if "latency" not in args.skip:
            latency(report, bed, rt, args)
        if "serial" not in args.skip:
            serial(report, bed, rt, args)
    report.notes.append(f"took {time.monotonic() - started:.0f} s")
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
