"""Tunnel speed (issue 5) against OpenSSH's ``ssh -N -L`` / ``ssh -N -R``, in one run.

``python3 benchmarks/bench_tunnels.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of one sshd host and, between the same two ends:

* moves 1 GB through ``expose_port_from_runtime`` (``-L``) and
  ``expose_port_to_runtime`` (``-R``), each way ("push": the tunnel's client sends to
  the service; "pull": the service sends to the client), with our default carrier
  (relays over the runtime's one paramiko connection), with our opt-in
  ``carrier="openssh"``, and with ``ssh -N -L``/``ssh -N -R`` themselves, alternating;
* opens 200 short connections through one tunnel, 20 at a time, and times each one's
  set-up (connect until the first byte came back through the service).

Every ssh uses the bed's ssh_config (``-F``) and our cipher (aes128-gcm), so only the
relays differ. Clients and services run in processes of their own; only the relay runs
in this one. Beside each rate, the CPU the relay used per GB (this process for ours,
the ``ssh`` process for OpenSSH): on a small, shared machine the rates follow the load,
the CPU cost much less so. MB is 10^6 bytes. PARTS for ``--skip``: throughput, latency, openssh.
``--full`` repeats each transfer 3 times (default once).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
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

    from _benchlib import Section
    from sshbed import SshBed

GB = 1_000_000_000
MB = 1e6
CIPHER = "aes128-gcm@openssh.com"
SHORT_CONNECTIONS = 200
AT_ONCE = 20

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


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def ssh_forward(bed: SshBed, flag: str, listen: int, target: int) -> Iterator[CpuClock | None]:
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
    rt: Runtime, flag: str, listen: int, target: int, carrier: str
) -> Iterator[CpuClock | None]:
    """The same tunnel through the runtime; yields this process's CPU clock (the
    relay's, for the paramiko carrier; None for the openssh one)."""
    if flag == "-L":
        key = rt.expose_port_from_runtime(target, listen, carrier=carrier)
    else:
        key = rt.expose_port_to_runtime(target, listen, carrier=carrier)
    try:
        yield _own_cpu if carrier == "paramiko" else None
    finally:
        rt.stop_process(key)


def throughput(report: Report, bed: SshBed, rt: Runtime, args: argparse.Namespace) -> None:
    """1 GB each way through -L and -R: ours (both carriers) and ssh, alternating."""
    carriers: list[tuple[str, Callable[..., contextlib.AbstractContextManager[CpuClock | None]]]]
    carriers = [
        ("ours (paramiko relay)", lambda f, p, t: our_forward(rt, f, p, t, "paramiko")),
        ("ssh -N", lambda f, p, t: ssh_forward(bed, f, p, t)),
    ]
    if "openssh" not in args.skip:
        carriers.insert(
            1, ("ours (carrier=openssh)", lambda f, p, t: our_forward(rt, f, p, t, "openssh"))
        )
    repeats = 3 if args.full else 1
    for flag in ("-L", "-R"):
        for way, mode in (("push", "sink"), ("pull", "source")):
            section = report.section(f"{flag} {way} 1 GB", "MB/s", higher_is_better=True)
            rates: dict[str, list[float]] = {name: [] for name, _ in carriers}
            cpu: dict[str, list[float]] = {name: [] for name, _ in carriers}
            with service(mode) as target:
                for _ in range(repeats):
                    for name, opener in carriers:
                        listen = free_port()
                        with opener(flag, listen, target) as clock:
                            before = clock() if clock else 0.0
                            rates[name].append(GB / float(client(way, listen, GB)) / MB)
                            if clock:
                                cpu[name].append((clock() - before) * 1e9 / GB)
            for name, _ in carriers:
                label = name.split("(")[-1].rstrip(")") if name.startswith("ours") else ""
                note = f"relay CPU {min(cpu[name]):.2f} s/GB" if cpu[name] else ""
                section.add(name, rates[name], ours=name.startswith("ours"), label=label, note=note)
            check_target(report, section)


def check_target(report: Report, section: Section) -> None:
    """The issue's goal: our default carrier moves at least half of OpenSSH's rate."""
    ours = next(row for row in section.rows if row.name.startswith("ours (paramiko"))
    peer = next(row for row in section.rows if row.name == "ssh -N")
    ratio = ours.stats["median"] / peer.stats["median"]
    report.target(f"{section.title}: paramiko relay / ssh", ratio, ">= 0.5x", ratio >= 0.5)


def latency(report: Report, bed: SshBed, rt: Runtime) -> None:
    """200 short connections, 20 at a time, through one tunnel: set-up time each."""
    for flag in ("-L", "-R"):
        title = f"{flag} set-up, {SHORT_CONNECTIONS} connections {AT_ONCE} at a time"
        section = report.section(title, "ms", higher_is_better=False)
        with service("echo") as target:
            for name, ours in (("ours", True), ("ssh -N", False)):
                listen = free_port()
                opener = (
                    our_forward(rt, flag, listen, target, "paramiko")
                    if ours
                    else (ssh_forward(bed, flag, listen, target))
                )
                with opener:
                    client("latency", listen, AT_ONCE, AT_ONCE)  # warm-up
                    out = client("latency", listen, SHORT_CONNECTIONS, AT_ONCE)
                values = [seconds * 1000 for seconds in json.loads(out)]
                row = section.add(name, values, ours=ours)
                ordered = sorted(values)
                p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
                row.note = f"p50 {row.stats['median']:.2f} ms, p99 {p99:.2f} ms"


def main() -> None:
    """Run the parts not skipped and print the report."""
    args = _benchlib.bench_arguments(__doc__ or "")
    _benchlib.quiet_logging()
    report = Report("bench_tunnels", notes=environment_notes())
    started = time.monotonic()
    with ssh_bed(1) as bed, Runtime("host-1", connection_kwargs=bed.connection_kwargs) as rt:
        report.notes.append(f"cipher: ours {rt._context.connection.cipher}, ssh {CIPHER}")  # type: ignore[union-attr]
        if "throughput" not in args.skip:
            throughput(report, bed, rt, args)
        if "latency" not in args.skip:
            latency(report, bed, rt)
    report.notes.append(f"took {time.monotonic() - started:.0f} s")
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
