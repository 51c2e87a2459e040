"""See the supervision tree live: typed events, snapshots, Prometheus metrics and a web
view (docs: guide/observe.md).

``tree.events()`` (and ``runtime.events()``, ``group.events()``, ``cluster.events()``
for a part of it) gives a :class:`Subscription`; :func:`snapshot` the whole tree as
plain data. The metrics (:mod:`actorcluster.observe.metrics`) and the view
(:mod:`actorcluster.observe.view`) need the ``observe`` extra and are imported only
when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorcluster.observe.bus import BUS, DEFAULT_BUFFER, EventBus, Subscription, emit
from actorcluster.observe.events import (
    ClusterMasterReady,
    ClusterStarting,
    ClusterStopped,
    Event,
    ProcessExited,
    ProcessGaveUp,
    ProcessRestarted,
    ProcessStarted,
    ProcessStopped,
    RuntimeConnecting,
    RuntimeGone,
    RuntimeLost,
    RuntimeReady,
    RuntimeReattached,
    TaskCancelled,
    TaskFailed,
    TaskFinished,
    TaskOutput,
    TaskStarted,
    TaskStepFinished,
    TaskSubmitted,
    TunnelClosed,
    TunnelOpened,
    event_types,
)

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "BUS",
    "ClusterMasterReady",
    "ClusterStarting",
    "ClusterStopped",
    "Event",
    "EventBus",
    "ProcessExited",
    "ProcessGaveUp",
    "ProcessRestarted",
    "ProcessStarted",
    "ProcessStopped",
    "RuntimeConnecting",
    "RuntimeGone",
    "RuntimeLost",
    "RuntimeReady",
    "RuntimeReattached",
    "Subscription",
    "TaskCancelled",
    "TaskFailed",
    "TaskFinished",
    "TaskOutput",
    "TaskStarted",
    "TaskStepFinished",
    "TaskSubmitted",
    "TunnelClosed",
    "TunnelOpened",
    "emit",
    "event_types",
    "snapshot",
    "subscribe",
]


def subscribe(
    *,
    hosts: Collection[str] | None = None,
    cluster: str | None = None,
    maxsize: int = DEFAULT_BUFFER,
) -> Subscription:
    """A subscription to the tree's events (of ``hosts`` only, and of ``cluster``,
    when given), buffering up to ``maxsize`` events before it drops the oldest."""
    return BUS.subscribe(hosts=hosts, cluster=cluster, maxsize=maxsize)


def snapshot(root: Any = None) -> dict[str, Any]:
    """The whole tree as plain, JSON-ready data (see :mod:`.snapshots`).

    Args:
        root: the root supervisor's ref; None: the library's default tree.
    """
    from actorcluster.observe.snapshots import take_snapshot  # noqa: PLC0415 - it imports the tree

    return take_snapshot(root)
