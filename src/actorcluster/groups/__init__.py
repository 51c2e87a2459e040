"""Many runtimes at once: :class:`RuntimeGroup` and :class:`RuntimeManager`, with
lazycluster's ``runtime_mgmt`` API.

Every operation on a group runs on all its hosts at once (never one host after
another), and a host that fails fails only its own part, with its name. The runtimes a
group connects run under a supervisor of the group's own in the supervision tree.
"""

from __future__ import annotations

from actorcluster.groups.group import RuntimeGroup
from actorcluster.groups.manager import RuntimeManager
from actorcluster.groups.tree import GroupSupervisor

__all__ = ["GroupSupervisor", "RuntimeGroup", "RuntimeManager"]
