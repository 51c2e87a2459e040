"""actorcluster: remote machines over SSH as supervised actors.

The public API is lazycluster's (``Runtime``, ``RuntimeTask``, ...); every name is
re-exported here.
"""

from __future__ import annotations

from actorcluster.errors import (
    ActorClusterError,
    InvalidRuntimeError,
    LazyclusterError,
    MasterStartError,
    NoPortsLeftError,
    PathCreationError,
    PortInUseError,
    TaskExecutionError,
)

__all__ = [
    "ActorClusterError",
    "InvalidRuntimeError",
    "LazyclusterError",
    "MasterStartError",
    "NoPortsLeftError",
    "PathCreationError",
    "PortInUseError",
    "TaskExecutionError",
]

__version__ = "0.1.0"
