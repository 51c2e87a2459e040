"""Small real children for the supervisor tests, and helpers to drive them.

Not a test module itself (it holds no tests); the ``test_supervisor_*`` files import it.
A :class:`Worker` records what happens to it in a shared :class:`Journal`, which tests
wait on instead of sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster.supervisors import (
    ChildInfo,
    ChildSpec,
    Restart,
    SupervisedActor,
    Supervisor,
    join_actor,
    supervisor_proxy,
)

if TYPE_CHECKING:
    from collections.abc import Callable

WAIT = 5.0
"""Seconds any single wait in these tests may take before it counts as a failure."""


class StartFailedError(RuntimeError):
    """What a Worker told to fail its start raises from on_start."""


class Journal:
    """What happened to every Worker, in order, as ``(kind, name)`` pairs.

    Kinds: ``start``, ``start_failed``, ``stop``, ``failure``.
    """

    def __init__(self) -> None:
        self._events: list[tuple[str, str]] = []
        self._changed = threading.Condition()
        self._fail_starts: dict[str, int] = {}

    def record(self, kind: str, name: str) -> None:
        """Append one event."""
        with self._changed:
            self._events.append((kind, name))
            self._changed.notify_all()

    def names(self, kind: str) -> list[str]:
        """The names of the events of one kind, in order."""
        with self._changed:
            return [name for k, name in self._events if k == kind]

    def count(self, kind: str, name: str) -> int:
        """How many events of this kind happened to this worker."""
        return self.names(kind).count(name)

    def wait_count(self, kind: str, name: str, count: int, timeout: float = WAIT) -> None:
        """Wait until ``count`` events of this kind happened to this worker."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: sum(1 for e in self._events if e == (kind, name)) >= count, timeout
            )
        assert ok, f"{kind} of {name} not seen {count} times: {self._events}"

    def fail_next_starts(self, name: str, count: int) -> None:
        """Make the next ``count`` starts of this worker fail in on_start."""
        with self._changed:
            self._fail_starts[name] = count

    def take_start_failure(self, name: str) -> bool:
        """Whether this start must fail (consumes one planned failure)."""
        with self._changed:
            left = self._fail_starts.get(name, 0)
            if left:
                self._fail_starts[name] = left - 1
            return bool(left)


@dataclass(frozen=True)
class Exit:
    """Tell a Worker to stop itself normally."""


@dataclass(frozen=True)
class Hang:
    """Tell a Worker to block in its handler until ``release`` is set (at most 10 s)."""

    release: threading.Event


class Worker(SupervisedActor):
    """A supervised child that records its life in a Journal."""

    def __init__(self, name: str, journal: Journal) -> None:
        super().__init__()
        self.name = name
        self.journal = journal

    def on_start(self) -> None:
        super().on_start()
        if self.journal.take_start_failure(self.name):
            self.journal.record("start_failed", self.name)
            raise StartFailedError(self.name)
        self.journal.record("start", self.name)

    def on_stop(self) -> None:
        self.journal.record("stop", self.name)
        super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        self.journal.record("failure", self.name)
        super().on_failure(*exc_info)

    def on_receive(self, message: Any) -> Any:
        match message:
            case Exit():
                self.stop()
            case Hang(release=release):
                release.wait(10.0)
            case _:
                return super().on_receive(message)
        return None

    def current_thread(self) -> threading.Thread:
        """The thread handling this call (for tests of where actors run)."""
        return threading.current_thread()


def worker_spec(
    name: str,
    journal: Journal,
    restart: Restart = Restart.PERMANENT,
    shutdown_timeout: float = WAIT,
) -> ChildSpec:
    """A spec starting a Worker called ``name``."""
    return ChildSpec(name, lambda: Worker.start(name, journal), restart, shutdown_timeout)


def children(sup: pykka.ActorRef[Any]) -> list[ChildInfo]:
    """The supervisor's children (a synchronous ask)."""
    return supervisor_proxy(sup).which_children().get(timeout=WAIT)


def running(sup: pykka.ActorRef[Any]) -> list[str]:
    """Ids of the children running now, in start order."""
    return [c.id for c in children(sup) if c.alive]


def ref_of(sup: pykka.ActorRef[Any], child_id: str) -> pykka.ActorRef[Any]:
    """The running child's ref."""
    info = next(c for c in children(sup) if c.id == child_id)
    assert info.ref is not None, f"{child_id} is not running"
    return info.ref


def end_child(
    sup: pykka.ActorRef[Any], child_id: str, how: Callable[[pykka.ActorRef[Any]], object]
) -> list[ChildInfo]:
    """End a child with ``how``, wait until the supervisor handled it, return children.

    Once the child's thread ended its exit notice is in the supervisor's inbox, so the
    next ask is answered after the supervisor reacted to it.
    """
    ref = ref_of(sup, child_id)
    how(ref)
    assert join_actor(ref, timeout=WAIT)
    return children(sup)


def crash(ref: pykka.ActorRef[Any], error: Exception | None = None) -> None:
    """Make a supervised actor crash (through the ``crash`` helper, via a proxy)."""
    ref.proxy().crash(error or RuntimeError("boom")).get(timeout=WAIT)


def exit_normally(ref: pykka.ActorRef[Any]) -> None:
    """Make a Worker stop itself."""
    ref.tell(Exit())


def start_supervisor(*args: Any, **kwargs: Any) -> pykka.ActorRef[Supervisor]:
    """Start a top-level Supervisor and wait until its children started."""
    ref = Supervisor.start(*args, **kwargs)
    children(ref)
    return ref


def stop_every_actor() -> None:
    """Stop every actor, oldest first (a supervisor stops its own children)."""
    for ref in pykka.ActorRegistry.get_all():
        ref.stop(block=True, timeout=WAIT)
