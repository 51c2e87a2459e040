"""The actors of one runtime, and the tree they form.

:class:`ConnectionActor` (the SSH connection), :class:`AgentActor` (the agent session),
:class:`TaskActor` (one running task) and :class:`TunnelActor` (one port exposure), under
the runtime's supervisors (:mod:`~actorcluster.actors.runtime_tree`); what they share is
a :class:`RuntimeContext`. One actor class per module.
"""

from __future__ import annotations

from actorcluster.actors.agent import AgentActor, AgentStatistics
from actorcluster.actors.connection import ConnectionActor, ConnectionStatistics
from actorcluster.actors.context import LOCALHOST, RuntimeContext, RuntimeOptions
from actorcluster.actors.runtime_tree import (
    TaskSupervisor,
    TunnelSupervisor,
    runtime_supervisor_spec,
)
from actorcluster.actors.task import TaskActor, TaskRun, TaskStatistics
from actorcluster.actors.tunnel import TunnelActor, TunnelStatistics, tunnel_child_spec

__all__ = [
    "LOCALHOST",
    "AgentActor",
    "AgentStatistics",
    "ConnectionActor",
    "ConnectionStatistics",
    "RuntimeContext",
    "RuntimeOptions",
    "TaskActor",
    "TaskRun",
    "TaskStatistics",
    "TaskSupervisor",
    "TunnelActor",
    "TunnelStatistics",
    "TunnelSupervisor",
    "runtime_supervisor_spec",
    "tunnel_child_spec",
]
