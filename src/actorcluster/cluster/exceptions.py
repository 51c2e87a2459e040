"""lazycluster's ``lazycluster.cluster.exceptions`` module path: ``MasterStartError``.

The class is :class:`actorcluster.errors.MasterStartError`, with lazycluster's
attributes ``host``, ``port`` and ``cause``.
"""

from __future__ import annotations

from actorcluster.errors import MasterStartError

__all__ = ["MasterStartError"]
