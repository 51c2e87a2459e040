"""The supervision vocabulary (OTP's): restart types, strategies, child specs, backoff,
and the frozen snapshots a supervisor reports."""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pykka

__all__ = [
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "Restart",
    "Strategy",
    "SupervisorStatistics",
    "validate_supervisor",
]


class Restart(enum.Enum):
    """When a child that exited is restarted (OTP restart types)."""

    PERMANENT = "permanent"
    """Always restarted."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal exit (a crash)."""
    TEMPORARY = "temporary"
    """Never restarted; removed from the supervisor's children when it exits."""


class Strategy(enum.Enum):
    """Which children are restarted when one exits and must be restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that exited."""
    ONE_FOR_ALL = "one_for_all"
    """All children: the others are stopped (reverse order), then all start in order."""
    REST_FOR_ONE = "rest_for_one"
    """The child and those started after it: those are stopped (reverse order), then
    the child and they start in order."""


def _check_number(owner: str, name: str, value: object, *, minimum: float, strict: bool) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        in_range = value > minimum or (not strict and value == minimum)
        if in_range and math.isfinite(value):
            return
    bound = f"> {minimum}" if strict else f">= {minimum}"
    msg = f"{owner}.{name} must be a finite number {bound}, got {value!r}"
    raise ConfigurationError(msg)


def validate_supervisor(
    name: object,
    strategy: object,
    children: Sequence[object],
    *,
    max_restarts: object,
    period: object,
    backoff: object,
) -> None:
    """Check a Supervisor's arguments.

    Raises:
        ConfigurationError: naming the invalid argument.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"Supervisor.name must be a non-empty string, got {name!r}")
    if not isinstance(strategy, Strategy):
        raise ConfigurationError(f"Supervisor.strategy must be a Strategy, got {strategy!r}")
    if max_restarts is not None and (
        not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0
    ):
        raise ConfigurationError(
            f"Supervisor.max_restarts must be an int >= 0 or None (forever), got {max_restarts!r}"
        )
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not period > 0:
        raise ConfigurationError(f"Supervisor.period must be a number > 0, got {period!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise ConfigurationError(f"Supervisor.backoff must be a Backoff or None, got {backoff!r}")
    seen: set[str] = set()
    for spec in children:
        if not isinstance(spec, ChildSpec):
            raise ConfigurationError(f"Supervisor.children must hold ChildSpecs, got {spec!r}")
        if spec.id in seen:
            raise ConfigurationError(f"Supervisor.children has the id {spec.id!r} twice")
        seen.add(spec.id)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Args:
        id: unique among the supervisor's children.
        start: starts the child and returns its ref; the actor it starts must be a
            :class:`~actorcluster.supervisors.SupervisedActor`. Called on the
            supervisor's thread, typically ``lambda: Worker.start(arg)``.
        restart: when the child is restarted after it exits.
        shutdown_timeout: seconds the child gets to stop before the supervisor gives
            up on it (logs ``supervisor.child.kill_timeout``) and moves on. Python
            cannot kill a thread: such a child stops once its current handler returns.

    Raises:
        ConfigurationError: naming the field that is invalid.
    """

    id: str
    start: Callable[[], pykka.ActorRef[Any]]
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            msg = f"ChildSpec.id must be a non-empty string, got {self.id!r}"
            raise ConfigurationError(msg)
        start: object = self.start  # typed, but callers may not be type-checked
        if not callable(start):
            msg = f"ChildSpec.start of {self.id!r} must be callable, got {start!r}"
            raise ConfigurationError(msg)
        restart: object = self.restart
        if not isinstance(restart, Restart):
            msg = f"ChildSpec.restart of {self.id!r} must be a Restart, got {restart!r}"
            raise ConfigurationError(msg)
        _check_number(
            "ChildSpec", "shutdown_timeout", self.shutdown_timeout, minimum=0, strict=True
        )


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between restarts of a child.

    The ``n``-th restart of a child within the supervisor's period (from 0) waits
    ``min(maximum, initial * multiplier**n)`` seconds, scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``; so every delay lies in ``[0, maximum * (1 + jitter)]``.

    Raises:
        ConfigurationError: naming the field that is invalid.
    """

    initial: float = 0.05
    """Delay before the first restart, in seconds."""
    maximum: float = 2.0
    """Upper bound of the delay before jitter."""
    multiplier: float = 2.0
    """Growth factor per restart."""
    jitter: float = 0.1
    """Relative spread of the random factor, in ``[0, 1]``."""

    def __post_init__(self) -> None:
        _check_number("Backoff", "initial", self.initial, minimum=0, strict=False)
        _check_number("Backoff", "maximum", self.maximum, minimum=self.initial, strict=False)
        _check_number("Backoff", "multiplier", self.multiplier, minimum=1, strict=False)
        _check_number("Backoff", "jitter", self.jitter, minimum=0, strict=False)
        if self.jitter > 1:
            msg = f"Backoff.jitter must be <= 1, got {self.jitter!r}"
            raise ConfigurationError(msg)

    def base_delay(self, attempt: int) -> float:
        """The delay before jitter (its expectation) for restart number ``attempt``."""
        try:
            grown = self.initial * self.multiplier ** max(0, attempt)
        except OverflowError:
            return self.maximum
        return min(self.maximum, grown)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered delay for restart number ``attempt`` (0 for the first).

        Args:
            attempt: how many restarts of the child came before, within the period.
            rand: a source of uniform numbers in ``[0, 1)``.
        """
        factor = 1.0 + self.jitter * (2.0 * rand() - 1.0)
        return min(max(0.0, self.base_delay(attempt) * factor), self.maximum * (1 + self.jitter))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildInfo:
    """One child as :meth:`Supervisor.which_children` reports it."""

    id: str
    """The child spec's id."""
    ref: pykka.ActorRef[Any] | None
    """The running actor; None while it is stopped or waiting to be restarted."""
    restart: Restart
    """The child's restart type."""
    restart_count: int
    """How many times the supervisor restarted it (its own or a sibling's exit)."""
    alive: bool
    """Whether the actor is running now."""
    restarting: bool = False
    """Whether a restart is scheduled (backoff pending)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildCounts:
    """OTP's ``count_children``."""

    specs: int
    """Children known, running or not."""
    active: int
    """Children running now."""
    supervisors: int
    """Running children that are supervisors."""
    workers: int
    """Running children that are not supervisors."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStatistics:
    """A snapshot of a supervisor, from :meth:`Supervisor.statistics`."""

    name: str
    """The supervisor's name."""
    strategy: Strategy
    """Its strategy."""
    restarts_total: int
    """Restarts it decided on since it started (each counted towards intensity)."""
    restarts_in_period: int
    """Restarts within the current intensity period."""
    pending_restarts: int
    """Restarts waiting for their backoff to elapse."""
    children: tuple[ChildInfo, ...]
    """The children, in start order."""
