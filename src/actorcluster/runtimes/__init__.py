"""Runtimes: one host as lazycluster's ``Runtime``, and the tasks it runs.

The import path of lazycluster's ``lazycluster.runtimes`` module: ``Runtime``,
``RuntimeTask`` and the names scripts import from it; and ``RuntimeHandle``, the engine
below a ``Runtime`` (``runtime.handle``) through which groups, clusters and tools
reach it.
"""

from __future__ import annotations

from actorcluster.runtimes.handle import RuntimeHandle
from actorcluster.runtimes.runtime import ConnectedRuntimes, Runtime
from actorcluster.runtimes.task import RuntimeTask

__all__ = ["ConnectedRuntimes", "Runtime", "RuntimeHandle", "RuntimeTask"]
