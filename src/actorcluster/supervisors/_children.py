"""A supervisor's bookkeeping for its children: one record per child spec, pending
restarts, and which children a strategy restarts together."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from actorcluster.errors import UsageError
from actorcluster.supervisors._spec import ChildCounts, ChildInfo, Restart, Strategy

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pykka

    from actorcluster.supervisors._actor import _Link
    from actorcluster.supervisors._clock import Cancellable
    from actorcluster.supervisors._spec import ChildSpec

__all__ = ["Child", "ChildTable", "PendingRestart"]


class Child:
    """One child spec and its current incarnation, if any."""

    __slots__ = (
        "last_crash",
        "link",
        "pending",
        "ref",
        "restart_count",
        "spec",
        "started_at",
        "streak",
    )

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: pykka.ActorRef[Any] | None = None
        self.link: _Link | None = None
        self.restart_count = 0
        self.pending: int | None = None
        """The token of the pending restart this child belongs to, if any."""
        self.started_at: float | None = None
        """When (on the supervisor's clock) its current incarnation started."""
        self.streak = 0
        """Restarts in a row, each after a run shorter than the period (the backoff
        attempt of a supervisor without an intensity limit)."""
        self.last_crash: str | None = None
        """The reason of its last crash or failed start in the current streak (a retry
        loop logs the first failure, not every attempt)."""

    def __repr__(self) -> str:
        state = "running" if self.ref is not None else "restarting" if self.pending else "stopped"
        return f"<Child {self.spec.id} {state} restarts={self.restart_count}>"

    @property
    def id(self) -> str:
        """The spec's id."""
        return self.spec.id

    @property
    def temporary(self) -> bool:
        """Whether the child is never restarted."""
        return self.spec.restart is Restart.TEMPORARY

    def is_running(self) -> bool:
        """Whether an incarnation is running now."""
        return self.ref is not None and self.ref.is_alive()

    def info(self) -> ChildInfo:
        """The public snapshot."""
        return ChildInfo(
            id=self.spec.id,
            ref=self.ref,
            restart=self.spec.restart,
            restart_count=self.restart_count,
            alive=self.is_running(),
            restarting=self.pending is not None,
        )


class PendingRestart:
    """Children waiting to be started again, in start order, once the backoff elapsed."""

    __slots__ = ("children", "handle", "reason")

    def __init__(self, children: list[Child], reason: str, handle: Cancellable | None) -> None:
        self.children = children
        self.reason = reason
        self.handle = handle

    def cancel(self) -> None:
        """Cancel the timer, if one was set."""
        if self.handle is not None:
            self.handle.cancel()


class ChildTable:
    """A supervisor's children in start order, and its pending restarts.

    Each child belongs to at most one pending restart (``Child.pending`` holds its
    token); scheduling a restart that shares a child with a pending one merges them.
    """

    def __init__(self, owner: str, specs: Iterable[ChildSpec]) -> None:
        self._owner = owner
        self._children = {spec.id: Child(spec) for spec in specs}
        self.pending: dict[int, PendingRestart] = {}
        self._tokens = itertools.count(1)

    def __len__(self) -> int:
        return len(self._children)

    def __contains__(self, child: object) -> bool:
        return isinstance(child, Child) and self._children.get(child.id) is child

    @property
    def children(self) -> list[Child]:
        """Every child, in start order (a new list)."""
        return list(self._children.values())

    def add(self, child: Child) -> None:
        """Add a child after the others (its id must be new)."""
        self._children[child.id] = child

    def remove(self, child: Child) -> None:
        """Forget a child."""
        if self._children.get(child.id) is child:
            del self._children[child.id]

    def remove_temporary(self) -> None:
        """Forget every temporary child."""
        self._children = {key: c for key, c in self._children.items() if not c.temporary}

    def find(self, child_id: str) -> Child | None:
        """The child with this id, or None."""
        return self._children.get(child_id)

    def get(self, child_id: str) -> Child:
        """The child with this id.

        Raises:
            UsageError: naming the unknown id.
        """
        child = self.find(child_id)
        if child is None:
            raise UsageError(f"supervisor {self._owner} has no child {child_id!r}")
        return child

    def get_stopped(self, child_id: str) -> Child:
        """The child with this id, which must be neither running nor pending a restart.

        Raises:
            UsageError: naming the id, unknown or in the wrong state.
        """
        child = self.get(child_id)
        if child.ref is not None or child.pending is not None:
            state = "running" if child.ref is not None else "being restarted"
            raise UsageError(f"child {child_id!r} of supervisor {self._owner} is {state}")
        return child

    def group(self, child: Child, strategy: Strategy) -> list[Child]:
        """The children restarted together when ``child`` must be, in start order.

        ``one_for_one``: the child; ``one_for_all``: every child; ``rest_for_one``:
        the child and every child after it.
        """
        match strategy:
            case Strategy.ONE_FOR_ONE:
                return [child]
            case Strategy.ONE_FOR_ALL:
                return self.children
            case Strategy.REST_FOR_ONE:
                children = self.children
                return children[children.index(child) :]

    def next_token(self) -> int:
        """A fresh token for a pending restart."""
        return next(self._tokens)

    def add_pending(self, token: int, group: list[Child], restart: PendingRestart) -> None:
        """Record a pending restart of ``group`` (already merged) under ``token``."""
        for child in group:
            child.pending = token
        self.pending[token] = restart

    def merge_pending(self, group: list[Child]) -> list[Child]:
        """``group`` plus the children of pending restarts it shares a child with
        (those are cancelled), in start order."""
        merged = {id(c): c for c in group}
        for token in {c.pending for c in group if c.pending is not None}:
            for child in self.pop_pending(token).children:
                merged[id(child)] = child
        return [c for c in self.children if id(c) in merged]

    def pop_pending(self, token: int) -> PendingRestart:
        """Remove a pending restart (cancelling its timer) and return it.

        Raises:
            KeyError: no pending restart has this token.
        """
        restart = self.pending.pop(token)
        restart.cancel()
        for child in restart.children:
            child.pending = None
        return restart

    def unpend(self, child: Child) -> None:
        """Take ``child`` out of its pending restart, if any."""
        if child.pending is None:
            return
        token, child.pending = child.pending, None
        restart = self.pending[token]
        restart.children.remove(child)
        if not restart.children:
            self.pop_pending(token)

    def cancel_all(self) -> None:
        """Cancel every pending restart."""
        for token in list(self.pending):
            self.pop_pending(token)

    def counts(self, supervisor_class: type[Any]) -> ChildCounts:
        """OTP's ``count_children``."""
        running = [c for c in self._children.values() if c.is_running()]
        supervisors = sum(
            1
            for c in running
            if c.link is not None and issubclass(c.link.actor_class or object, supervisor_class)
        )
        return ChildCounts(
            specs=len(self.children),
            active=len(running),
            supervisors=supervisors,
            workers=len(running) - supervisors,
        )
