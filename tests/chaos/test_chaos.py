"""The seeded chaos suite: three runtimes on real sshd hosts kept busy with commands,
functions and transfers (tasks in flight on each), a supervised echo server carrying
traffic through a tunnel, a hostile host sending frames that would unpickle to
gigabytes; meanwhile faults at random moments drawn from the seed (sshd killed, the
agent SIGSTOPped or SIGKILLed). After the run: every future resolved (a verified result
or a typed error naming its host), no success ran twice, the tunnel carries data,
nothing of ours left on the hosts, no partial file anywhere. A second test SIGKILLs the
client mid-run and a second client checks the hosts.

CI runs :data:`DURATION` seconds (``ACTORCLUSTER_CHAOS_SECONDS``, default 120: about 3
minutes with set-up); ``ACTORCLUSTER_CHAOS=full`` runs 30 minutes. Every failure
prints the seed; ``ACTORCLUSTER_CHAOS_SEED=<seed>`` replays its fault schedule and task
mix. Figures (tasks/s, p50/p99 latency, time to recover per fault kind) go to
``benchmarks/results/chaos.json``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from actorcluster import ActorClusterError, Runtime, RuntimeTask
from chaos.faults import FAULTS, Fault, run_schedule, schedule
from chaos.workload import Workload
from cli_runner import cli_env
from proctree import alive, environ

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

FULL = os.environ.get("ACTORCLUSTER_CHAOS") == "full"
DURATION = float(os.environ.get("ACTORCLUSTER_CHAOS_SECONDS") or (1800 if FULL else 120))
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "chaos.json"
RUNTIME_KWARGS = {"heartbeat_timeout": 3, "heartbeat_interval": 0.5, "session_grace": 5}

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(int(DURATION) + 600)]

ECHO_SERVER = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', {port})); s.listen(16)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.settimeout(5)\n"
    "    try:\n"
    "        c.sendall(c.recv(1024))\n"
    "    except OSError:\n"
    "        pass\n"
    "    c.close()\n"
)


@pytest.fixture
def seed() -> int:
    """The run's seed (``ACTORCLUSTER_CHAOS_SEED`` replays one), printed first."""
    value = int(os.environ.get("ACTORCLUSTER_CHAOS_SEED") or random.randrange(1, 10**9))
    print(f"\nchaos seed {value} (replay: ACTORCLUSTER_CHAOS_SEED={value})")
    return value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _echo_once(port: int, payload: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            conn.sendall(payload)
            return conn.recv(1024) == payload
    except OSError:
        return False


class Traffic:
    """Connections through the tunnel all run long: counts what came back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        number = 0
        while not self._stop.wait(0.05):
            number += 1
            if _echo_once(self.port, f"ping {number}".encode()):
                self.ok += 1
            else:
                self.failed += 1


def _hostile(runtime: Runtime, deadline: float, problems: list[str]) -> None:
    """Every few seconds a command the hostile host answers with a 16 MiB set bomb:
    each must fail typed, naming its host."""
    while time.monotonic() < deadline:
        try:
            runtime.execute_task(RuntimeTask("bomb").run_command("set bomb")).get(timeout=60)
            problems.append("a hostile frame was taken as a result")
        except ActorClusterError as exc:
            if runtime.host not in str(exc):
                problems.append(f"a hostile frame's error does not name its host: {exc}")
        except Exception as exc:
            problems.append(f"a hostile frame gave an untyped error: {exc!r}")
        time.sleep(2)


def _left_on(bed: SshBed) -> list[int]:
    """Processes that came in through the bed's sshd (agents, their watchdogs, their
    commands, wherever they moved in the process tree): their ``SSH_CONNECTION`` names
    one of the bed's hosts."""
    ends = {f"{host.address} {host.port}" for host in bed.hosts}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            connection = environ(int(entry)).get("SSH_CONNECTION", "")
            if any(connection.endswith(end) for end in ends):
                found.append(int(entry))
    return found


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _recover_times(faults: list[tuple[Fault, float]], workload: Workload) -> dict[str, list[float]]:
    """Per fault kind: seconds from each heal to the first task that started after it on
    that host and succeeded."""
    times: dict[str, list[float]] = {}
    for fault, healed in faults:
        after = [
            o.ended - healed
            for o in workload.outcomes
            if o.ok and o.host == fault.host and o.started >= healed
        ]
        if after:
            times.setdefault(fault.kind, []).append(round(min(after), 3))
    return times


def _report(
    seed: int, workload: Workload, took: float, recover: dict[str, list[float]]
) -> dict[str, Any]:
    latencies = sorted(o.ended - o.started for o in workload.outcomes if o.ok)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    report = {
        "seed": seed,
        "mode": "full" if FULL else "ci",
        "seconds": round(took, 1),
        "tasks": len(workload.outcomes),
        "succeeded": sum(o.ok for o in workload.outcomes),
        "failed_typed": sum(not o.ok and not o.problem for o in workload.outcomes),
        "tasks_per_second": round(len(workload.outcomes) / took, 1),
        "latency_p50_ms": round(quantiles[49] * 1000, 1),
        "latency_p99_ms": round(quantiles[98] * 1000, 1),
        "recover_seconds": {
            kind: {"count": len(values), "median": statistics.median(values), "max": max(values)}
            for kind, values in recover.items()
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous[report["mode"]] = report
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2))
    return report


def test_a_seeded_chaos_run_keeps_every_promise(
    make_ssh_bed: Callable[[int], SshBed], tmp_path: Path, seed: int
) -> None:
    from test_hostile_decoding import _fake

    bed = make_ssh_bed(3)
    hosts = {host.name: host for host in bed.hosts}
    kwargs = {**bed.connection_kwargs, **RUNTIME_KWARGS}
    remote_dir, local_dir = tmp_path / "remote", tmp_path / "local"
    remote_dir.mkdir()
    local_dir.mkdir()
    runtimes = {name: Runtime(name, connection_kwargs=kwargs) for name in hosts}
    hostile_kwargs = {**kwargs, "python": str(_fake(tmp_path, first=""))}
    hostile = Runtime("host-3", connection_kwargs=hostile_kwargs)
    problems: list[str] = []
    healed: list[tuple[Fault, float]] = []
    kinds = [name for name, kind in FAULTS.items() if kind.available(bed)]
    faults = schedule(seed, DURATION, sorted(hosts), kinds)
    workload = Workload(runtimes, seed, remote_dir, local_dir, window=40 if FULL else 8)
    port, local_port = _free_port(), _free_port()
    try:
        server = runtimes["host-1"].supervise(
            f"exec python3 -c {shlex.quote(ECHO_SERVER.format(port=port))}",
            name="echo",
            max_restarts=10_000,  # an outage is waiting, not failing (the default gives up
            period=60.0,  # after 5 failed starts while the host is away: see the report)
        )
        runtimes["host-1"].expose_port_from_runtime(port, local_port, carrier="paramiko")
        assert _wait(lambda: _echo_once(local_port, b"up"), 30), f"no echo (seed {seed})"
        started = time.monotonic()
        deadline = started + DURATION
        injector = threading.Thread(
            target=run_schedule,
            args=(faults, started, hosts, runtimes, lambda f, t: healed.append((f, t))),
            daemon=True,
        )
        bombs = threading.Thread(target=_hostile, args=(hostile, deadline, problems), daemon=True)
        with Traffic(local_port) as traffic:
            injector.start()
            bombs.start()
            workload.run(deadline)
            injector.join(timeout=60)
            bombs.join(timeout=120)
            carried = _wait(lambda: _echo_once(local_port, b"after"), 60)
        took = time.monotonic() - started
        if not carried:
            problems.append("the tunnel carries no data after the run")
        if not _wait(lambda: server.status == "running", 30):
            problems.append(f"the supervised process is {server.status} after the run")
        print(f"tunnel: {traffic.ok} echoes, {traffic.failed} failed during faults")
        recover = _recover_times(healed, workload)
        report = _report(seed, workload, took, recover)
        problems += [f"{o.task_id}: {o.problem}" for o in workload.outcomes if o.problem]
        problems += workload.counted_twice()
    finally:
        for runtime in [*runtimes.values(), hostile]:
            runtime.cleanup()
    if not _wait(lambda: not _left_on(bed), 30):
        problems.append(f"left running on the hosts after cleanup: {_left_on(bed)}")
    problems += workload.partial_files()
    assert report["succeeded"] > 0, f"nothing succeeded (seed {seed})"
    assert not problems, f"chaos seed {seed}: " + "; ".join(problems[:20])


CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from actorcluster import Runtime, RuntimeTask
    kwargs, remote, local = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    runtimes = [Runtime(h, connection_kwargs=kwargs) for h in ("host-1", "host-2", "host-3")]
    with open(local + "/big.bin", "wb") as f:
        f.truncate(256 * 1024 * 1024)
    for n, rt in enumerate(runtimes):
        rt.execute_task(RuntimeTask("sleep").run_command("sleep 600"), execute_async=True)
        rt.execute_task(RuntimeTask("up").send_file(local + "/big.bin", f"{remote}/up{n}.bin"),
                        execute_async=True)
        rt.execute_task(RuntimeTask("down").get_file(local + "/big.bin", f"{local}/down{n}.bin"),
                        execute_async=True)
    print("running", flush=True)
    time.sleep(600)
    """
)


def test_a_client_sigkilled_mid_run_leaves_nothing_a_second_client_finds(
    make_ssh_bed: Callable[[int], SshBed], tmp_path: Path, seed: int
) -> None:
    bed = make_ssh_bed(3)
    remote_dir, local_dir, cache = tmp_path / "remote", tmp_path / "local", tmp_path / "cache"
    for folder in (remote_dir, local_dir):
        folder.mkdir()
    kwargs = {**bed.connection_kwargs, **RUNTIME_KWARGS}
    env = cli_env(XDG_CACHE_HOME=str(cache))
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps(kwargs), str(remote_dir), str(local_dir)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == b"running", f"seed {seed}"
        time.sleep(random.Random(seed).uniform(0.2, 1.5))  # the moment, from the seed
        client.kill()
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
        if client.stdout is not None:
            client.stdout.close()
    gone = _wait(lambda: not _left_on(bed), RUNTIME_KWARGS["session_grace"] + 30)
    assert gone, f"chaos seed {seed}: left on the hosts after the client died: {_left_on(bed)}"
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:  # a second client: its first download sweeps the dead client's partial files
        checker = Runtime("host-1", connection_kwargs=bed.connection_kwargs)
        try:
            (remote_dir / "probe.txt").write_text("probe")
            checker.get_file(str(remote_dir / "probe.txt"), str(local_dir / "probe.txt"))
            listing = checker.execute_task(
                RuntimeTask("look").run_command(f"ls -A {remote_dir}"), execute_async=False
            ).execution_log
        finally:
            checker.cleanup()
    finally:
        del os.environ["XDG_CACHE_HOME"]
    parts = [
        p for p in map(str, [*remote_dir.iterdir(), *local_dir.iterdir()]) if p.endswith(".part")
    ]
    assert not parts, f"chaos seed {seed}: partial files left: {parts} ({listing})"
