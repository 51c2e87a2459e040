"""A Dask cluster computing through a chaos run: the scheduler here, a worker on each
workload host, a driver thread submitting small computations one after another.

A computation that fails while a worker or the scheduler is down is counted, not a
breach (distributed's errors are its own; the cluster's promise is to come back at
full strength, checked after the run by :meth:`Scene.full_strength`). A computation
that returns a wrong value is a breach.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actorcluster.cluster.dask_cluster import DaskCluster

__all__ = ["DaskLoad", "square"]

COMPUTE_TIMEOUT = 30.0


def square(x: int) -> int:
    """What the workers compute (travels by value)."""
    return x * x


square.__module__ = "__main__"


@dataclass
class DaskLoad:
    """Computations submitted to ``cluster`` until stopped; what came back counted."""

    cluster: DaskCluster | None
    """None: no cluster in this run (nothing computed, nothing counted)."""
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> DaskLoad:
        if self.cluster is None:
            return self
        self._thread = threading.Thread(target=self._run, name="chaos-dask", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=COMPUTE_TIMEOUT + 30)

    def _run(self) -> None:
        number = 0
        client: Any = None
        while not self._stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                if client is None:
                    assert self.cluster is not None
                    client = self.cluster._client(5, set_as_default=False)
                value = client.submit(square, number, pure=False).result(timeout=COMPUTE_TIMEOUT)
            except Exception:  # a worker or the scheduler down: counted; a fresh client
                self.failed += 1
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close(timeout=5)
                client = None
                self._stop.wait(0.5)
                continue
            if value != number * number:
                self.wrong.append(f"dask computed {value!r} for square({number})")
            self.ok += 1
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.05)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
