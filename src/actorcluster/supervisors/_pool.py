"""Actors that hold a thread only while they have messages: :class:`PooledActor`.

pykka's ``ThreadingActor`` gives every actor a thread for its whole life. A runtime is
several actors (connection, agent, tasks, tunnels, one per running task), so a hundred
idle runtimes would hold a thousand threads that only wait on their inboxes. A
:class:`PooledActor` is a pykka actor (same refs, proxies, futures, ``on_start``/
``on_stop``/``on_failure`` and message order) whose inbox, when a message arrives,
queues the actor on the shared :class:`ActorPool`; a worker thread of the pool then
handles the actor's messages until its inbox is empty (or a fair share, then it queues
again), and goes on to the next actor. An actor is never handled by two workers at once.

The pool is elastic, since a handler may block (a supervisor waiting for a child's
``on_start``, a task sending a file): a queued actor gets an idle worker, else a new
one while there are fewer than :data:`BUSY_WORKERS`; past that, a monitor adds
workers whenever the queue made no progress for :data:`STALL_SECONDS` while every
worker was busy, so blocked handlers can never starve the others. It adds as many as
are busy (at most one per queued actor): a burst of blocking starts gets its threads
within a few periods, while a process that is merely short of CPU (a loaded machine:
no worker ran, none is blocked) does not get hundreds of threads that would only
compete for it. Workers end after :data:`IDLE_SECONDS` without work: an idle process
holds no pool thread.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pykka
from pykka import messages as pykka_messages

from actorcluster._workers import Job, Workers
from actorcluster.supervisors._flag import Flag
from actorcluster.supervisors._registry import install as _install_registry
from actorcluster.supervisors._registry import register as _register

if TYPE_CHECKING:
    from pykka._envelope import Envelope

__all__ = ["BUSY_WORKERS", "IDLE_SECONDS", "STALL_SECONDS", "ActorPool", "PooledActor"]

BUSY_WORKERS = max(4, 2 * (os.cpu_count() or 1))
"""Workers started at once for queued actors, before the monitor paces new ones."""
STALL_SECONDS = 0.02
"""How long the queue may make no progress before the monitor adds a worker."""
STALL_BURST = 256
"""Most workers the monitor adds at once (a burst of blocking starts: 100 connects)."""
IDLE_SECONDS = 2.0
"""How long a worker waits for work before it ends."""
FAIR_SHARE = 64
"""Messages an actor handles in one turn before others get theirs."""

_pykka_log = logging.getLogger("pykka")
_install_registry()  # an actor's start and stop in constant time, however many live

_URN_PREFIX = uuid.uuid4().urn[:-12]
"""Actor URNs are this process's random UUID with a counter for its last 48 bits:
unique as pykka's ``uuid4()`` per actor, without making a UUID object each time."""
_urn_numbers = itertools.count(1)

_THREADS = Workers("actorcluster-actor", linger=0.0)
"""The pool's workers and monitor end on their own (after :data:`IDLE_SECONDS`)."""


class ActorPool:
    """Worker threads shared by every :class:`PooledActor` of the process."""

    def __init__(self, name: str = "actorcluster-actor") -> None:
        self._name = name
        self._condition = threading.Condition()
        self._ready: collections.deque[PooledActor] = collections.deque()
        self._workers = 0
        self._idle = 0
        self._taken = 0
        """Actors taken off the queue, and turns ended, so far: the monitor's measure
        of progress (a worker that handles messages is not blocked)."""
        self._monitor: Job | None = None
        self._numbers = itertools.count(1)

    def __repr__(self) -> str:
        return f"<ActorPool workers={self._workers} idle={self._idle} queued={len(self._ready)}>"

    @property
    def workers(self) -> int:
        """Worker threads alive now."""
        return self._workers

    def schedule(self, actor: PooledActor) -> None:
        """Queue ``actor`` to have its inbox handled."""
        with self._condition:
            self._ready.append(actor)
            if self._idle:
                self._condition.notify()
            if len(self._ready) > self._idle:
                if self._workers < BUSY_WORKERS:
                    self._spawn()
                elif self._monitor is None:
                    self._monitor = self._start_thread(self._watch, f"{self._name}-monitor")

    def _spawn(self) -> None:
        """Start a worker (with the condition held)."""
        self._workers += 1
        self._start_thread(self._work, f"{self._name}-{next(self._numbers)}")

    @staticmethod
    def _start_thread(target: Any, name: str) -> Job:
        return _THREADS.start(target, name=name)

    def _take(self) -> PooledActor | None:
        """The next queued actor; None once idle for :data:`IDLE_SECONDS` (worker ends)."""
        with self._condition:
            deadline = time.monotonic() + IDLE_SECONDS
            while not self._ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._workers -= 1
                    return None
                self._idle += 1
                self._condition.wait(remaining)
                self._idle -= 1
            self._taken += 1
            return self._ready.popleft()

    def _work(self) -> None:
        while (actor := self._take()) is not None:
            actor._run_turn()
            self._taken += 1  # (without the lock: the monitor only compares it)

    def _watch(self) -> None:
        """Add a worker whenever queued actors made no progress for a while."""
        while True:
            with self._condition:
                if not self._ready:
                    self._monitor = None
                    return
                taken = self._taken
            time.sleep(STALL_SECONDS)  # not on the condition: a notify is for workers
            with self._condition:
                if self._ready and self._taken == taken and not self._idle:  # stalled
                    for _ in range(min(len(self._ready), STALL_BURST, max(1, self._workers))):
                        self._spawn()


POOL = ActorPool()
"""The process-wide pool."""


class _Inbox:
    """A pykka inbox that queues its actor on the pool when a message arrives."""

    __slots__ = ("_actor", "_queue")

    def __init__(self) -> None:
        self._queue: collections.deque[Envelope[Any]] = collections.deque()
        self._actor: PooledActor | None = None

    def bind(self, actor: PooledActor) -> None:
        self._actor = actor

    def put(self, envelope: Envelope[Any], /) -> None:
        self._queue.append(envelope)
        if self._actor is not None:
            self._actor._wake()

    def get(self) -> Envelope[Any]:
        return self._queue.popleft()

    def empty(self) -> bool:
        return not self._queue


class PooledActor(pykka.Actor):
    """A pykka actor run by the shared :class:`ActorPool` instead of a thread of its own.

    Behaves as a ``ThreadingActor`` to everyone using it: ``start``, refs, ``tell``,
    ``ask``, proxies, ``stop`` and the ``on_*`` hooks are pykka's. Its handlers run on
    pool workers, one message at a time and in order; blocking in one only holds that
    worker. :attr:`actor_finished` is set once the actor's life is over (``on_stop``
    or ``on_failure`` ran and the inbox was drained).
    """

    pool: ActorPool = POOL
    """The pool this class's actors run on."""
    start_here = False
    """Run ``on_start`` on the thread that starts the actor, within ``start()``, instead
    of on a pool worker: for an actor whose ``on_start`` never blocks and which is
    started where a thread hop would cost more than ``on_start`` itself (a task's
    actor sending its first request). Its messages still run on the pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pykka's Actor.__init__ sets these four: here with a cheaper URN, and a Flag
        # for its stopped Event (a dozen objects lighter; the ref holds the same one)
        self.actor_urn = f"{_URN_PREFIX}{next(_urn_numbers):012x}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = Flag()
        self._actor_ref = pykka.ActorRef(self)
        self._turn_lock = threading.Lock()
        self._queued = False
        self._set_up = False
        self.actor_finished: threading.Event = Flag()
        """Set when the actor has stopped and handled (or refused) its last message."""
        inbox = self.actor_inbox
        assert isinstance(inbox, _Inbox)
        inbox.bind(self)

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
        """Create, register and start the actor, as pykka's ``start`` does (without
        formatting its debug lines while pykka's logger drops them)."""
        if _pykka_log.isEnabledFor(logging.DEBUG):
            return super().start(*args, **kwargs)
        actor = cls(*args, **kwargs)
        ref = actor.actor_ref
        _register(ref)
        actor._start_actor_loop()
        return ref

    @staticmethod
    def _create_actor_inbox() -> _Inbox:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        with self._turn_lock:
            self._queued = True  # marked running: messages told meanwhile wait
        if self.start_here:
            self._set_up = True
            self._actor_loop_setup()
            with self._turn_lock:
                if self.actor_inbox.empty() and not self.actor_stopped.is_set():
                    self._queued = False
                    return
        self.pool.schedule(self)  # messages came, or it stopped: a worker takes over

    def _wake(self) -> None:
        """A message arrived: queue the actor unless it is queued or running."""
        with self._turn_lock:
            if self._queued:
                return
            self._queued = True
        self.pool.schedule(self)

    def _run_turn(self) -> None:
        """Handle messages (set-up first, teardown last) until the inbox is empty."""
        if not self._set_up:
            self._set_up = True
            self._actor_loop_setup()
        inbox = self.actor_inbox
        for _ in range(FAIR_SHARE):
            if self.actor_stopped.is_set():
                self._actor_loop_teardown()
                self.actor_finished.set()
                return
            with self._turn_lock:
                if inbox.empty():
                    self._queued = False
                    return
            self._handle(inbox.get())
        self.pool.schedule(self)  # a fair share handled: queue again, still marked queued

    def _handle(self, envelope: Envelope[Any]) -> None:
        """One message, exactly as pykka's ``_actor_loop_running`` handles it."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                _pykka_log.info(f"Exception returned from {self} to caller:", exc_info=True)
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                self._crashed(sys.exc_info())
        except BaseException:
            _pykka_log.debug(f"{sys.exc_info()[1]!r} in {self}. Stopping all actors.")
            self._stop()
            pykka.ActorRegistry.stop_all()

    def _crashed(self, exc_info: Any) -> None:
        """A message sent with ``tell`` raised: run ``on_failure`` (as pykka does)."""
        try:
            self.on_failure(*exc_info)
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _actor_loop_teardown(self) -> None:
        """Refuse what is left in the inbox (as pykka does), also what comes later."""
        inbox = self.actor_inbox
        while True:
            with self._turn_lock:
                if inbox.empty():
                    self._queued = False
                    return
            envelope = inbox.get()
            if envelope.reply_to is None:
                continue
            if isinstance(envelope.message, pykka_messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                error = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling it")
                envelope.reply_to.set_exception(exc_info=(type(error), error, None))
