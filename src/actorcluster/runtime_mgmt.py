"""The import path of lazycluster's ``lazycluster.runtime_mgmt`` module.

``RuntimeGroup`` and ``RuntimeManager`` (see :mod:`actorcluster.groups`), and the names
lazycluster's module imports that scripts take from it.
"""

from __future__ import annotations

from actorcluster.errors import (
    InvalidRuntimeError,
    NoPortsLeftError,
    NoRuntimesDetectedError,
    PortInUseError,
)
from actorcluster.groups import RuntimeGroup, RuntimeManager
from actorcluster.runtimes import Runtime, RuntimeTask

__all__ = [
    "InvalidRuntimeError",
    "NoPortsLeftError",
    "NoRuntimesDetectedError",
    "PortInUseError",
    "Runtime",
    "RuntimeGroup",
    "RuntimeManager",
    "RuntimeTask",
]
