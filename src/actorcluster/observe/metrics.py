"""Prometheus metrics of the tree, opt-in (``pip install actorcluster[observe]``).

One line in a service that already serves prometheus_client's default registry::

    actorcluster.observe.metrics.enable_metrics()

(or :func:`exposition` for the text, or the web view's ``/metrics``). The counters are
fed by the event bus (a listener, inline), the gauges read at scrape time:

- ``actorcluster_tasks_total{host,outcome}``: tasks ended (finished, failed, cancelled)
- ``actorcluster_task_duration_seconds{host}``: submission to end (histogram)
- ``actorcluster_restarts_total{kind}``: processes restarted (``process``), runtimes
  back after an outage (``runtime``), tunnels opened again (``tunnel``)
- ``actorcluster_events_total{kind}``: every event by its kind
- ``actorcluster_runtimes{state}``: runtimes connecting, ready, lost
- ``actorcluster_processes{status}``: supervised processes by status
- ``actorcluster_tunnel_bytes_total{host,tunnel}``: bytes carried by the tunnels of the
  ``paramiko`` carrier (``ssh -N`` does not tell), read from a snapshot of the default tree
"""

from __future__ import annotations

import bisect
import collections
import itertools
import threading
from typing import TYPE_CHECKING, Any

from actorcluster.errors import UsageError
from actorcluster.observe import hooks
from actorcluster.observe.bus import BUS
from actorcluster.observe.snapshots import take_snapshot
from actorcluster.supervisors import root_supervisor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client import CollectorRegistry

    from actorcluster.observe.bus import EventBus
    from actorcluster.observe.events import Event

__all__ = ["TreeMetrics", "disable_metrics", "enable_metrics", "exposition"]

_ENDS = {"task.finished": "finished", "task.failed": "failed", "task.cancelled": "cancelled"}
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
"""Task duration buckets, in seconds."""


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise UsageError(
            "the metrics need prometheus-client: pip install 'actorcluster[observe]'"
        ) from exc
    return prometheus_client


class TreeMetrics:
    """The tree's metrics in ``registry`` (a new one if None), fed by ``bus``.

    Counting is plain arithmetic under one lock (no metric object per event); the
    Prometheus families are built when scraped.

    Args:
        registry: where they are registered; None: a registry of their own.
        bus: the events that feed the counters.
    """

    def __init__(self, registry: CollectorRegistry | None = None, bus: EventBus = BUS) -> None:
        prom = _prometheus()
        self.registry: CollectorRegistry = (
            registry if registry is not None else prom.CollectorRegistry()
        )
        self._lock = threading.Lock()
        self._events: collections.Counter[str] = collections.Counter()
        self._tasks: collections.Counter[tuple[str, str]] = collections.Counter()
        self._restarts: collections.Counter[str] = collections.Counter()
        self._durations: dict[str, _Histogram] = {}
        self._lost: set[str] = set()
        self._tunnels_seen: set[tuple[str, str]] = set()
        self.registry.register(self)
        self._remove = bus.add_listener(self.on_event)

    def on_event(self, event: Event) -> None:
        """Count one event (the bus calls it inline)."""
        kind = event.kind
        with self._lock:
            self._events[kind] += 1
            outcome = _ENDS.get(kind)
            if outcome is not None:
                self._tasks[event.host, outcome] += 1
                histogram = self._durations.get(event.host)
                if histogram is None:
                    histogram = self._durations[event.host] = _Histogram()
                histogram.observe(getattr(event, "seconds", 0.0))
            elif kind == "process.restarted":
                self._restarts["process"] += 1
            elif kind == "runtime.lost":
                self._lost.add(event.host)
            elif kind in ("runtime.ready", "runtime.reattached") and event.host in self._lost:
                self._lost.discard(event.host)
                self._restarts["runtime"] += 1
            elif kind == "tunnel.opened":
                key = (event.host, getattr(event, "tunnel", ""))
                if key in self._tunnels_seen:
                    self._restarts["tunnel"] += 1
                self._tunnels_seen.add(key)

    def collect(self) -> Iterator[Any]:
        """The families (prometheus_client calls it at each scrape)."""
        core = _prometheus().metrics_core
        with self._lock:
            events, tasks = dict(self._events), dict(self._tasks)
            restarts = dict(self._restarts)
            durations = {host: h.copy() for host, h in self._durations.items()}
        family = core.CounterMetricFamily(
            "actorcluster_tasks", "Tasks ended, by host and outcome.", labels=["host", "outcome"]
        )
        for (host, outcome), count in sorted(tasks.items()):
            family.add_metric([host, outcome], count)
        yield family
        histogram = core.HistogramMetricFamily(
            "actorcluster_task_duration_seconds",
            "Seconds from a task's submission to its end.",
            labels=["host"],
        )
        for host, counts in sorted(durations.items()):
            histogram.add_metric([host], counts.buckets(), counts.total)
        yield histogram
        family = core.CounterMetricFamily(
            "actorcluster_restarts",
            "Restarts: processes, runtimes back, tunnels re-opened.",
            labels=["kind"],
        )
        for kind in ("process", "runtime", "tunnel"):
            family.add_metric([kind], restarts.get(kind, 0))
        yield family
        family = core.CounterMetricFamily(
            "actorcluster_events", "Events of the tree, by kind.", labels=["kind"]
        )
        for kind, count in sorted(events.items()):
            family.add_metric([kind], count)
        yield family
        yield from _state_families(core)

    def describe(self) -> list[Any]:
        """Nothing at registration (the families are built at scrape time)."""
        return []

    def close(self) -> None:
        """Stop counting and unregister the metrics."""
        self._remove()
        self.registry.unregister(self)


class _Histogram:
    """Counts per bucket (not cumulative) and the sum of what was observed."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
        self.total += value

    def copy(self) -> _Histogram:
        twin = _Histogram()
        twin.counts, twin.total = list(self.counts), self.total
        return twin

    def buckets(self) -> list[tuple[str, int]]:
        """Cumulative ``(le, count)`` pairs, ``+Inf`` last."""
        bounds = [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]
        return list(zip(bounds, itertools.accumulate(self.counts), strict=True))


def _state_families(core: Any) -> Iterator[Any]:
    """Gauges read at scrape time: runtimes by state, processes by status, tunnel bytes."""
    runtimes = core.GaugeMetricFamily(
        "actorcluster_runtimes", "Runtimes by state.", labels=["state"]
    )
    counts = collections.Counter(record.state for _, record in hooks.runtimes())
    for state in ("connecting", "ready", "lost"):
        runtimes.add_metric([state], counts.get(state, 0))
    yield runtimes
    processes = core.GaugeMetricFamily(
        "actorcluster_processes", "Supervised processes by status.", labels=["status"]
    )
    statuses = collections.Counter(str(p.status.value) for p in hooks.processes())
    for status, count in sorted(statuses.items()):
        processes.add_metric([status], count)
    yield processes
    carried = core.CounterMetricFamily(
        "actorcluster_tunnel_bytes", "Bytes carried by tunnels.", labels=["host", "tunnel"]
    )
    for tunnel in take_snapshot(root_supervisor())["tunnels"]:
        if tunnel["bytes"] is not None:
            carried.add_metric([tunnel["host"], tunnel["tunnel"]], tunnel["bytes"])
    yield carried


class _Enabled:
    lock = threading.Lock()
    metrics: TreeMetrics | None = None


def enable_metrics(registry: CollectorRegistry | None = None) -> TreeMetrics:
    """Register the tree's metrics in ``registry`` (prometheus_client's default one if
    None), once; the metrics already enabled are returned again."""
    with _Enabled.lock:
        if _Enabled.metrics is None:
            target = registry if registry is not None else _prometheus().REGISTRY
            _Enabled.metrics = TreeMetrics(target)
        return _Enabled.metrics


def disable_metrics() -> None:
    """Undo :func:`enable_metrics`."""
    with _Enabled.lock:
        metrics, _Enabled.metrics = _Enabled.metrics, None
    if metrics is not None:
        metrics.close()


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The text exposition of ``registry`` (default: prometheus_client's)."""
    prom = _prometheus()
    return bytes(prom.generate_latest(registry if registry is not None else prom.REGISTRY))
