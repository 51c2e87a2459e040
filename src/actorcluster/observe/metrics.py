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

import collections
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

    Args:
        registry: where they are registered; None: a registry of their own.
        bus: the events that feed the counters.
    """

    def __init__(self, registry: CollectorRegistry | None = None, bus: EventBus = BUS) -> None:
        prom = _prometheus()
        self.registry: CollectorRegistry = (
            registry if registry is not None else prom.CollectorRegistry()
        )
        self._tasks = prom.Counter(
            "actorcluster_tasks", "Tasks ended, by host and outcome.", ["host", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self._duration = prom.Histogram(
            "actorcluster_task_duration_seconds", "Seconds from a task's submission to its end.",
            ["host"], buckets=DURATION_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._restarts = prom.Counter(
            "actorcluster_restarts", "Restarts: processes, runtimes back, tunnels re-opened.",
            ["kind"], registry=self.registry,
        )  # fmt: skip
        self._events = prom.Counter(
            "actorcluster_events", "Events of the tree, by kind.", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        self._gauges = _StateCollector()
        self.registry.register(self._gauges)
        self._lost: set[str] = set()
        self._tunnels_seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._children: dict[tuple[Any, ...], Any] = {}
        self._remove = bus.add_listener(self.on_event)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (labels() takes a lock)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def on_event(self, event: Event) -> None:
        """Count one event (the bus calls it inline)."""
        kind = event.kind
        self._child(self._events, kind).inc()
        outcome = _ENDS.get(kind)
        if outcome is not None:
            self._child(self._tasks, event.host, outcome).inc()
            self._child(self._duration, event.host).observe(getattr(event, "seconds", 0.0))
        elif kind == "process.restarted":
            self._restarts.labels("process").inc()
        elif kind in ("runtime.lost", "runtime.ready", "runtime.reattached"):
            self._on_runtime(kind, event.host)
        elif kind == "tunnel.opened":
            key = (event.host, getattr(event, "tunnel", ""))
            with self._lock:
                again = key in self._tunnels_seen
                self._tunnels_seen.add(key)
            if again:
                self._restarts.labels("tunnel").inc()

    def _on_runtime(self, kind: str, host: str) -> None:
        with self._lock:
            if kind == "runtime.lost":
                self._lost.add(host)
                return
            back = host in self._lost
            self._lost.discard(host)
        if back:
            self._restarts.labels("runtime").inc()

    def close(self) -> None:
        """Stop counting and unregister the metrics."""
        self._remove()
        for collector in (self._tasks, self._duration, self._restarts, self._events, self._gauges):
            self.registry.unregister(collector)


class _StateCollector:
    """Gauges read at scrape time: runtimes by state, processes by status, tunnel bytes."""

    def collect(self) -> Iterator[Any]:
        core = _prometheus().metrics_core
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

    def describe(self) -> list[Any]:
        """Nothing at registration (the families are built at scrape time)."""
        return []


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
