"""lazycluster's ``cluster.exceptions`` import path (the errors live in
:mod:`actorcluster.errors`)."""

from __future__ import annotations

from actorcluster.errors import MasterStartError

__all__ = ["MasterStartError"]
