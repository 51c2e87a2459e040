"""What ``bench_rtt.py``'s parts share: a measured operation (times and round trips
counted by the bed's relay), the runtime options, the table."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from latency_relay import LatencyRelay
    from sshbed import SshBed

__all__ = ["QUIET", "Measured", "find", "relay_of", "run", "runtime_kwargs", "table"]

QUIET = {"heartbeat_interval": 600.0, "heartbeat_timeout": 1200.0}
"""Heartbeats slowed down, so that none falls into a count."""


class Measured:
    """One operation: its times (ms) and round trips, counted each time."""

    def __init__(self, name: str, who: str) -> None:
        self.name = name
        self.who = who
        self.ms: list[float] = []
        self.trips: list[float] = []

    def run(self, relay: LatencyRelay, action: Callable[[], object], samples: int) -> Measured:
        """Time and count ``action`` ``samples`` times (each between quiet moments)."""

        def timed() -> None:
            began = time.perf_counter()
            action()
            self.ms.append((time.perf_counter() - began) * 1000)

        for _ in range(samples):
            self.trips.append(relay.count(timed))
        return self

    @property
    def median_trips(self) -> float:
        """The median of the round trips counted."""
        return statistics.median(self.trips)

    @property
    def median_ms(self) -> float:
        """The median time."""
        return statistics.median(self.ms)


def relay_of(bed: SshBed, index: int = 0) -> LatencyRelay:
    """The relay before host ``index``."""
    relay = bed.hosts[index].relay
    assert relay is not None, "the bed has no relay (--rtt 0?)"
    return relay


def runtime_kwargs(bed: SshBed) -> dict[str, Any]:
    """The bed's connection options, heartbeats slowed down (:data:`QUIET`)."""
    return {**bed.connection_kwargs, **QUIET}


def run(argv: list[str], timeout: float = 120) -> None:
    """Run a peer's command (must succeed)."""
    subprocess.run(argv, check=True, timeout=timeout, capture_output=True)


def table(rows: list[Measured], rtt: float, samples: int) -> str:
    """The rows as a text table: round trips, milliseconds, milliseconds per RTT."""
    lines = [
        f"== round trips at {rtt:g} ms RTT (counted by the relay; median of {samples})",
        f"  {'operation':44} {'who':26} {'round trips':>11} {'ms':>9} {'ms/RTT':>7}",
    ]
    for row in rows:
        lines.append(
            f"  {row.name:44} {row.who:26} {row.median_trips:>11g} {row.median_ms:>9.1f} "
            f"{row.median_ms / rtt:>7.1f}"
        )
    return "\n".join(lines)


def find(rows: list[Measured], name: str, who: str) -> Measured | None:
    """The first row for operation ``name...`` by ``who...``."""
    return next((r for r in rows if r.name.startswith(name) and r.who.startswith(who)), None)
