"""The faults a chaos run injects, each a named kind with an inject and a heal.

A schedule is drawn from the run's seed: at random moments, a random kind on a random
host. Each kind is a :class:`FaultKind` in :data:`FAULTS`; a kind whose ``available``
says no for a run's :class:`Scene` is left out of the draw (``partition`` needs hosts in
network namespaces of their own, ``SshBed(isolated=True)``; the Dask kinds a cluster).

Time to recover: for a host fault, from its heal to the first task started after it on
that host that succeeded; for a Dask fault (a worker or the scheduler SIGKILLed, healed
by the cluster itself), from the kill to the cluster back at full strength (the killed
process running again and the scheduler listing every worker): the heal of a Dask kind
waits for that, so the moment the schedule records is that moment.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.dump import dump_state
from proctree import kill_tree

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster import Runtime
    from actorcluster.cluster.dask_cluster import DaskCluster
    from sshbed import SshHost

__all__ = ["DASK_KINDS", "FAULTS", "Fault", "FaultKind", "Scene", "run_schedule", "schedule"]

FULL_STRENGTH_TIMEOUT = 180.0
"""A Dask fault's heal waits at most this for the cluster to be whole again."""


@dataclass(frozen=True)
class Fault:
    """One fault of a schedule."""

    at: float
    """Seconds after the run's start."""
    kind: str
    host: str
    hold: float
    """Seconds between inject and heal."""


@dataclass
class Scene:
    """What faults act on: the bed's hosts, the runtimes, the Dask cluster (if any)."""

    hosts: dict[str, SshHost]
    runtimes: dict[str, Runtime]
    cluster: DaskCluster | None = None
    workers: int = 0
    """Workers the cluster has at full strength."""
    problems: list[str] = field(default_factory=list)
    """What a heal found broken (a cluster not whole again in time)."""
    state: str = ""
    """What :meth:`full_strength` saw last."""

    def full_strength(self, timeout: float) -> bool:
        """Wait until every worker process and the scheduler run and the scheduler lists
        exactly :attr:`workers` workers; False if not within ``timeout`` (then
        :attr:`state` says what was seen last)."""
        cluster = self.cluster
        assert cluster is not None
        deadline = time.monotonic() + timeout
        processes = [cluster._master_launcher.process, *cluster._worker_launcher.processes]
        while time.monotonic() < deadline:
            if cluster.failure is not None:
                self.state = f"the cluster failed: {cluster.failure!r}"
                return False
            statuses = [(p.name, p.status, p.pid) if p else None for p in processes]
            self.state = f"processes {statuses}"
            if all(p is not None and p.status == "running" and p.pid for p in processes):
                try:
                    with cluster._client(5, set_as_default=False) as client:
                        listed = client.scheduler_info()["workers"]
                except Exception as exc:  # the scheduler may be starting
                    self.state += f"; no client: {exc!r}"
                else:
                    names = sorted(w.get("name", "?") for w in listed.values())
                    self.state += f"; the scheduler lists {names}"
                    if len(listed) == self.workers:
                        return True
            time.sleep(0.5)
        return False


@dataclass(frozen=True)
class FaultKind:
    """How to inject and heal one kind of fault."""

    inject: Callable[[Scene, str], Any]
    heal: Callable[[Scene, str, Any], None]
    available: Callable[[Scene], bool] = lambda scene: True


def _agent_pid(runtime: Runtime) -> int | None:
    session = runtime._handle.context.session
    pid = session.address.get("pid") if session is not None else None
    return pid if isinstance(pid, int) else None


def _signal(pid: int | None, signum: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _sshd_down(scene: Scene, host: str) -> None:
    scene.hosts[host].stop()  # the listener and every session: the agent's stream ends


def _sshd_up(scene: Scene, host: str, _: Any) -> None:
    scene.hosts[host].start()


def _stop_agent(scene: Scene, host: str) -> int | None:
    pid = _agent_pid(scene.runtimes[host])
    _signal(pid, signal.SIGSTOP)
    return pid


def _continue_agent(scene: Scene, host: str, pid: int | None) -> None:
    _signal(pid, signal.SIGCONT)


def _kill_agent(scene: Scene, host: str) -> None:
    _signal(_agent_pid(scene.runtimes[host]), signal.SIGKILL)


def _nothing(scene: Scene, host: str, _: Any) -> None:
    return None


def _isolated(scene: Scene) -> bool:
    return all(host.net is not None for host in scene.hosts.values())


def _cut(scene: Scene, host: str) -> None:
    scene.hosts[host].partition()  # silence both ways: no reset, no refusal


def _heal_link(scene: Scene, host: str, _: Any) -> None:
    scene.hosts[host].heal()


def _has_cluster(scene: Scene) -> bool:
    return scene.cluster is not None and scene.workers > 0


def _kill_worker(scene: Scene, host: str) -> int | None:
    """SIGKILL the worker on ``host`` (any worker if none runs there)."""
    assert scene.cluster is not None
    processes = scene.cluster._worker_launcher.processes
    here = [p for p in processes if p.host == host] or list(processes)
    pid = here[0].pid if here else None
    if pid is not None:
        kill_tree(pid, kill_root=True)
    return pid


def _kill_scheduler(scene: Scene, host: str) -> int | None:
    assert scene.cluster is not None
    process = scene.cluster._master_launcher.process
    pid = process.pid if process is not None else None
    if pid is not None:
        kill_tree(pid, kill_root=True)
    return pid


def _whole_again(scene: Scene, host: str, killed: int | None) -> None:
    if not scene.full_strength(FULL_STRENGTH_TIMEOUT):
        dumped = dump_state(scene.state)
        scene.problems.append(
            f"the Dask cluster was not back at full strength {FULL_STRENGTH_TIMEOUT:.0f} s "
            f"after a kill of pid {killed}: {scene.state} (tree and threads: {dumped})"
        )


FAULTS: dict[str, FaultKind] = {
    "sshd_killed": FaultKind(_sshd_down, _sshd_up),
    "agent_sigstop": FaultKind(_stop_agent, _continue_agent),
    "agent_sigkill": FaultKind(_kill_agent, _nothing),
    "partition": FaultKind(_cut, _heal_link, _isolated),
    "dask_worker_killed": FaultKind(_kill_worker, _whole_again, _has_cluster),
    "dask_scheduler_killed": FaultKind(_kill_scheduler, _whole_again, _has_cluster),
}
"""Every fault kind by name (hostile frames and a client SIGKILL are runs of their
own: see ``test_chaos.py``)."""

DASK_KINDS = frozenset({"dask_worker_killed", "dask_scheduler_killed"})
"""Kinds whose recovery is measured from the kill (their heal waits for it)."""


def schedule(seed: int, duration: float, hosts: list[str], kinds: list[str]) -> list[Fault]:
    """The faults of a run: one every few seconds at random, none in its last quarter
    (the hosts heal before the verdicts)."""
    rng = random.Random(seed)
    faults, at = [], rng.uniform(1.0, 3.0)
    while at < duration * 0.75:
        kind = rng.choice(kinds)
        faults.append(Fault(at, kind, rng.choice(hosts), round(rng.uniform(0.5, 4.0), 2)))
        at += rng.uniform(2.0, 6.0)
    return faults


def run_schedule(
    faults: list[Fault],
    started: float,
    scene: Scene,
    healed: Callable[[Fault, float, float], None],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Inject each fault at its moment and heal it after its hold (one at a time);
    ``healed(fault, injected, healed)`` after each. Ends early once ``stop()``."""
    for fault in faults:
        time.sleep(max(0.0, started + fault.at - time.monotonic()))
        if stop():
            return
        kind = FAULTS[fault.kind]
        injected = time.monotonic()
        token = kind.inject(scene, fault.host)
        time.sleep(fault.hold)
        kind.heal(scene, fault.host, token)
        healed(fault, injected, time.monotonic())
