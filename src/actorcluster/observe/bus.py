"""The one event bus of the process, and its subscriptions.

The tree publishes through :func:`emit` (one line where a thing happens). While nobody
listens that is one attribute read: no event is even built. A :class:`Subscription`
has a bounded buffer: when its reader falls behind, the oldest events are dropped and
counted (:attr:`Subscription.dropped`), so a slow subscriber never blocks the tree.
Listeners (:meth:`EventBus.add_listener`, the metrics) are called inline and must be
quick.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Collection, Iterator
    from types import TracebackType

    from actorcluster.observe.events import Event

__all__ = [
    "BUS",
    "DEFAULT_BUFFER",
    "DEFAULT_LINGER",
    "EventBus",
    "Subscription",
    "emit",
    "subscribe",
]

log = get_logger(__name__)

DEFAULT_BUFFER = 10_000
"""Events a subscription keeps for its reader before it drops the oldest."""
DEFAULT_LINGER = 0.02
"""Seconds an iterating reader waits, once woken, for more events to gather."""


class Subscription:
    """Events of the tree (or of a part of it), in order, as they happen.

    From threads: ``for event in sub.iter(timeout=1.0)`` (ends after ``timeout`` seconds
    without an event; ``for event in sub`` waits forever, until :meth:`close`), or
    :meth:`get`. From asyncio: ``async for event in sub``. Close it (or use it as a
    context manager) to stop receiving.

    Args:
        bus: where the events come from.
        maxsize: events buffered before the oldest are dropped.
        hosts: only events of these hosts (None: every host).
        cluster: also events of this cluster.
        linger: seconds iteration waits after a wake-up for more events to gather
            (:meth:`get` never lingers).
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        maxsize: int = DEFAULT_BUFFER,
        hosts: Collection[str] | None = None,
        cluster: str | None = None,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        self._bus = bus
        self._buffer: collections.deque[Event] = collections.deque()
        self._maxsize = max(1, maxsize)
        self._hosts = frozenset(hosts) if hosts is not None else None
        self._cluster = cluster
        self._condition = threading.Condition(threading.Lock())
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._readers = 0
        self.dropped = 0
        """Events dropped because the buffer was full."""
        self.received = 0
        """Events offered to this subscription (kept or dropped)."""
        self.linger = linger
        """Seconds iteration waits after a wake-up for more events to gather (a reader
        woken for every event costs the publishers more than the reading)."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Subscription {state} buffered={len(self._buffer)} dropped={self.dropped}>"

    def wants(self, event: Event) -> bool:
        """Whether this subscription's scope covers ``event``."""
        if self._hosts is None:
            return True
        if event.host in self._hosts:
            return True
        return self._cluster is not None and getattr(event, "cluster", None) == self._cluster

    def offer(self, event: Event) -> None:
        """Buffer an event (called by the bus, on the publisher's thread; never waits
        for the reader)."""
        if self._hosts is not None and not self.wants(event):
            return
        with self._condition:
            if self._closed:
                return
            self.received += 1
            if len(self._buffer) >= self._maxsize:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(event)
            if self._readers:  # a reader waits on an empty buffer: wake it (once)
                self._condition.notify()
            if not self._waiters:
                return
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            _wake(loop, future)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds; None if none came in
        time or the subscription is closed."""
        deadline = Deadline(timeout)
        with self._condition:
            while not self._buffer:
                if self._closed:
                    return None
                left = deadline.timeout()
                if left is not None and left <= 0:
                    return None
                self._readers += 1
                try:
                    self._condition.wait(left)
                finally:
                    self._readers -= 1
            return self._buffer.popleft()

    def drain(self) -> list[Event]:
        """Every buffered event, without waiting."""
        with self._condition:
            events = list(self._buffer)
            self._buffer.clear()
            return events

    def iter(self, timeout: float | None = None) -> Iterator[Event]:
        """Events as they come; ends once ``timeout`` seconds pass without one (None:
        only when closed)."""
        pause = threading.Event()
        while True:
            batch = collections.deque(self.drain())  # what gathered, under one lock
            if not batch:
                event = self.get(timeout)
                if event is None:
                    return
                if self.linger > 0:  # let a burst gather: one wake-up for many events
                    pause.wait(self.linger)
                batch.append(event)
                batch.extend(self.drain())
            try:
                while batch:
                    yield batch.popleft()
            finally:  # a reader that stops early: what it did not take goes back
                if batch:
                    self._put_back(batch)

    def _put_back(self, events: collections.deque[Event]) -> None:
        with self._condition:
            self._buffer.extendleft(reversed(events))

    def __iter__(self) -> Iterator[Event]:
        return self.iter(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        loop = asyncio.get_running_loop()
        while True:
            with self._condition:
                if self._buffer:
                    return self._buffer.popleft()
                if self._closed:
                    raise StopAsyncIteration
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            await future
            if self.linger > 0:  # let a burst gather: one wake-up for many events
                await asyncio.sleep(self.linger)

    def close(self) -> None:
        """Stop receiving; readers waiting now get the end of the stream."""
        self._bus.unsubscribe(self)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            _wake(loop, future)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    def done() -> None:
        if not future.done():
            future.set_result(None)

    try:
        loop.call_soon_threadsafe(done)
    except RuntimeError:
        return  # its loop is closed: nobody waits any more


class EventBus:
    """Fans each published event out to the subscriptions and listeners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self.active = False
        """Whether anyone listens (read by :func:`emit` before it builds an event)."""

    def subscribe(
        self,
        *,
        maxsize: int = DEFAULT_BUFFER,
        hosts: Collection[str] | None = None,
        cluster: str | None = None,
        linger: float = DEFAULT_LINGER,
    ) -> Subscription:
        """A new subscription (see :class:`Subscription` for the arguments)."""
        subscription = Subscription(
            self, maxsize=maxsize, hosts=hosts, cluster=cluster, linger=linger
        )
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self.active = True
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self.active = bool(self._subscriptions or self._listeners)

    def add_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener(event)`` inline for every event (keep it quick: it runs on
        the publisher's thread); returns what removes it."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self.active = True

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)
                self.active = bool(self._subscriptions or self._listeners)

        return remove

    def publish(self, event: Event) -> None:
        """Deliver ``event`` now; a failing listener is logged, never raised."""
        for subscription in self._subscriptions:
            subscription.offer(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception as exc:  # a listener's bug must not break the tree
                log.warning("observe.listener_failed", kind=event.kind, error=repr(exc))


BUS = EventBus()
"""The process's event bus."""


def emit(kind: Callable[..., Event], **fields: Any) -> None:
    """Publish ``kind(**fields)`` on :data:`BUS`, building it only if anyone listens."""
    if BUS.active:
        BUS.publish(kind(**fields))


def subscribe(
    *,
    hosts: Collection[str] | None = None,
    cluster: str | None = None,
    maxsize: int = DEFAULT_BUFFER,
    linger: float = DEFAULT_LINGER,
) -> Subscription:
    """A subscription to the tree's events on :data:`BUS` (of ``hosts`` only, and of
    ``cluster``, when given), buffering up to ``maxsize`` events before it drops the
    oldest (see :class:`Subscription`)."""
    return BUS.subscribe(hosts=hosts, cluster=cluster, maxsize=maxsize, linger=linger)
