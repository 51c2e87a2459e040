"""lazycluster's ``lazycluster.exceptions`` module path: its error classes, by its names.

A script written for lazycluster keeps ``from lazycluster.exceptions import
TaskExecutionError`` working as ``from actorcluster.exceptions import
TaskExecutionError``. Each name is the class :mod:`actorcluster.errors` defines, with
lazycluster's attributes (see there).
"""

from __future__ import annotations

from actorcluster.errors import (
    InvalidRuntimeError,
    LazyclusterError,
    NoPortsLeftError,
    NoRuntimesDetectedError,
    PathCreationError,
    PortInUseError,
    TaskExecutionError,
)

__all__ = [
    "InvalidRuntimeError",
    "LazyclusterError",
    "NoPortsLeftError",
    "NoRuntimesDetectedError",
    "PathCreationError",
    "PortInUseError",
    "TaskExecutionError",
]
