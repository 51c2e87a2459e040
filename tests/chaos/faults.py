"""The faults a chaos run injects, each a named kind with an inject and a heal.

A schedule is drawn from the run's seed: at random moments, a random kind on a random
host. Each kind is a :class:`FaultKind` in :data:`FAULTS`; a kind whose ``available``
says no on a bed is left out of the draw. ``partition`` is declared for hosts in
network namespaces of their own (``SshBed(isolated=True)``, being added to
``tests/sshbed.py``): its ``available`` is False until the bed can cut a link, and the
draw then skips it; registering its inject/heal there is all it needs.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster import Runtime
    from sshbed import SshBed, SshHost

__all__ = ["FAULTS", "Fault", "FaultKind", "schedule"]


@dataclass(frozen=True)
class Fault:
    """One fault of a schedule."""

    at: float
    """Seconds after the run's start."""
    kind: str
    host: str
    hold: float
    """Seconds between inject and heal."""


@dataclass(frozen=True)
class FaultKind:
    """How to inject and heal one kind of fault."""

    inject: Callable[[SshHost, Runtime], Any]
    heal: Callable[[SshHost, Runtime, Any], None]
    available: Callable[[SshBed], bool] = lambda bed: True


def _agent_pid(runtime: Runtime) -> int | None:
    session = runtime._handle.context.session
    pid = session.address.get("pid") if session is not None else None
    return pid if isinstance(pid, int) else None


def _signal(pid: int | None, signum: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _sshd_down(host: SshHost, runtime: Runtime) -> None:
    host.stop()  # the listener and every session: the agent's stream ends


def _sshd_up(host: SshHost, runtime: Runtime, _: Any) -> None:
    host.start()


def _stop_agent(host: SshHost, runtime: Runtime) -> int | None:
    pid = _agent_pid(runtime)
    _signal(pid, signal.SIGSTOP)
    return pid


def _continue_agent(host: SshHost, runtime: Runtime, pid: int | None) -> None:
    _signal(pid, signal.SIGCONT)


def _kill_agent(host: SshHost, runtime: Runtime) -> None:
    _signal(_agent_pid(runtime), signal.SIGKILL)


def _nothing(host: SshHost, runtime: Runtime, _: Any) -> None:
    return None


def _can_partition(bed: SshBed) -> bool:
    return callable(getattr(bed, "cut_link", None))


def _cut(host: SshHost, runtime: Runtime) -> None:
    host._bed.cut_link(host)  # type: ignore[attr-defined]


def _heal_link(host: SshHost, runtime: Runtime, _: Any) -> None:
    host._bed.heal_link(host)  # type: ignore[attr-defined]


FAULTS: dict[str, FaultKind] = {
    "sshd_killed": FaultKind(_sshd_down, _sshd_up),
    "agent_sigstop": FaultKind(_stop_agent, _continue_agent),
    "agent_sigkill": FaultKind(_kill_agent, _nothing),
    "partition": FaultKind(_cut, _heal_link, _can_partition),
}
"""Every fault kind by name (hostile frames and a client SIGKILL are runs of their
own: see ``test_chaos.py``)."""


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
    hosts: dict[str, SshHost],
    runtimes: dict[str, Runtime],
    healed: Callable[[Fault, float], None],
) -> None:
    """Inject each fault at its moment and heal it after its hold (one at a time)."""
    for fault in faults:
        time.sleep(max(0.0, started + fault.at - time.monotonic()))
        kind = FAULTS[fault.kind]
        host, runtime = hosts[fault.host], runtimes[fault.host]
        token = kind.inject(host, runtime)
        time.sleep(fault.hold)
        kind.heal(host, runtime, token)
        healed(fault, time.monotonic())
