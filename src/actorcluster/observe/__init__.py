"""See the supervision tree live: typed events, snapshots, Prometheus metrics and a web
view (docs: guide/observe.md).

``tree.events()`` (and ``runtime.events()``, ``group.events()``, ``cluster.events()``
for a part of it) gives a :class:`Subscription`; :func:`snapshot` the whole tree as
plain data. The metrics (:mod:`actorcluster.observe.metrics`) and the view
(:mod:`actorcluster.observe.view`) need the ``observe`` extra and are imported only
when used.
"""

from __future__ import annotations

from typing import Any

from actorcluster.observe.bus import BUS, DEFAULT_BUFFER, EventBus, Subscription, emit, subscribe
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

__all__ = [
    "BUS",
    "DEFAULT_BUFFER",
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


def snapshot(root: Any = None) -> dict[str, Any]:
    """The whole tree as plain, JSON-ready data (see :mod:`.snapshots`).

    Args:
        root: the root supervisor's ref; None: the library's default tree.
    """
    from actorcluster.observe.snapshots import take_snapshot
    from actorcluster.supervisors import root_supervisor

    return take_snapshot(root if root is not None else root_supervisor())
