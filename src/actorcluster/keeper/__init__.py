"""The per-user connection keeper's standard-library side: where it lives, which calls
it may serve (:mod:`~actorcluster.keeper.paths`), and how a caller finds or starts it
(:mod:`~actorcluster.keeper.finder`).

Both the command line (``actorcluster run ...``) and the library (``Runtime(host,
keeper=True)``) use these; the keeper itself is :mod:`actorcluster.cli.keeper_server`.
Nothing is imported here: a call through the keeper loads only what it uses.
"""

from __future__ import annotations

__all__: list[str] = []
