"""Supervision notifications: what a supervised actor tells its supervisor, and the
supervisor's own timer messages.

A :class:`ChildExited` is sent by every :class:`~actorcluster.supervisors.SupervisedActor`
to its supervisor when it stops, after its ``on_stop``/``on_failure`` ran. The
supervisor matches it to the child it started by ``actor_urn``: a notification from an
older incarnation of a child (one the supervisor stopped itself, say) is stale and
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AdoptChild", "ChildExited"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildExited:
    """A supervised actor stopped, normally or by crashing."""

    child_id: str
    """The id of the child spec the actor was started under."""
    actor_urn: str
    """The stopped actor's URN: tells this incarnation from earlier ones."""
    normal: bool
    """True for a normal stop (``on_stop`` ran); False for a crash."""
    reason: str | None = None
    """The crash in words (``repr`` of the exception); None for a normal stop."""
    error: Exception | None = None
    """The exception the actor crashed with; None for a normal stop."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdoptChild:
    """Take a temporary child that was already started by whoever asked for it (see
    :func:`~actorcluster.supervisors.start_temporary`) under supervision."""

    spec: Any
    """The child's :class:`~actorcluster.supervisors.ChildSpec`."""
    ref: Any
    """The started child's ``pykka.ActorRef``."""
    link: Any
    """The child's link to this supervisor (supervisors' internal bookkeeping)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _RestartDue:
    """Internal: a scheduled restart's backoff has elapsed (sent by the clock's timer)."""

    token: int
    """Identifies the pending restart; a cancelled or superseded token is ignored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _StartChildren:
    """Internal: a supervisor that starts its children after ``on_start`` does it now."""
