"""Supervision for pykka actors, with Erlang/OTP's semantics.

A :class:`Supervisor` starts :class:`ChildSpec` children in order, restarts them by
their :class:`Restart` type and its :class:`Strategy` (with :class:`Backoff` between
restarts), gives up past ``max_restarts`` restarts in ``period`` seconds (failing to its
own parent with :class:`~actorcluster.errors.SupervisorGaveUpError`), and stops children
in reverse order. Every supervised actor derives from :class:`SupervisedActor`.

Trees: :class:`SupervisionTree` for a service that owns its own, or the process-wide
:func:`root_supervisor`. Time is injected through a :class:`Clock`
(:class:`ManualClock` in tests).
"""

from __future__ import annotations

from actorcluster.supervisors._actor import SupervisedActor, join_actor
from actorcluster.supervisors._clock import Cancellable, Clock, ManualClock, SystemClock
from actorcluster.supervisors._proxy import SupervisorProxy, supervisor_proxy
from actorcluster.supervisors._spec import (
    Backoff,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorStatistics,
)
from actorcluster.supervisors._supervisor import Supervisor, start_temporary
from actorcluster.supervisors._tree import (
    RootSupervisor,
    SupervisionTree,
    root_supervisor,
    stop_root_supervisor,
)

__all__ = [
    "Backoff",
    "Cancellable",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "Clock",
    "ManualClock",
    "Restart",
    "RootSupervisor",
    "Strategy",
    "SupervisedActor",
    "SupervisionTree",
    "Supervisor",
    "SupervisorProxy",
    "SupervisorStatistics",
    "SystemClock",
    "join_actor",
    "root_supervisor",
    "start_temporary",
    "stop_root_supervisor",
    "supervisor_proxy",
]
