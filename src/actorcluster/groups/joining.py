"""Hosts that were down when a group started, connected in the background: :class:`Joiner`.

A group created with ``require="any"`` or ``require=N`` starts with the hosts that came
up; each other host is tried again, on one thread of the group's, with capped
exponential backoff (:data:`JOIN_BACKOFF`), and joins the group the moment it is
reachable. Errors that waiting cannot fix (a host name not in the ssh config, a refused
key, a changed host key, no python3 there) end the host's tries at once.

Events: ``group.host.waiting`` (first failure, with the error), ``group.host.joined``
(attempts and seconds waited), ``group.host.gave_up`` (an error waiting cannot fix).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster._workers import THREADS
from actorcluster.errors import (
    ActorClusterError,
    AgentStartError,
    AuthenticationError,
    HostKeyError,
    PathCreationError,
    UnknownHostError,
    UsageError,
)
from actorcluster.supervisors import Backoff

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster._workers import Job
    from actorcluster.runtimes import Runtime

__all__ = ["JOIN_BACKOFF", "Joiner", "is_permanent"]

log = get_logger(__name__)

JOIN_BACKOFF = Backoff(initial=0.2, maximum=1.5, multiplier=2.0, jitter=0.2)
"""Delays between a pending host's tries: a host back from an outage joins within
about two seconds (plus its connect time)."""


def is_permanent(error: BaseException) -> bool:
    """Whether waiting cannot fix the error (the host's tries end)."""
    permanent = (
        UnknownHostError,
        AuthenticationError,
        HostKeyError,
        AgentStartError,
        PathCreationError,
        UsageError,
    )
    return isinstance(error, permanent)


class Joiner:
    """Connects a group's pending hosts in the background until each joins.

    Args:
        group: the group's name, for events.
        attempt: ``attempt(host, abandon)`` connects the host once: a runtime (under the
            group's supervisor), None when ``abandon`` was set meanwhile (nothing left),
            or it raises the typed error of the try. It may set ``abandon`` itself to
            wake its own wait (the event is the try's own).
        joined: called with each runtime that came up (on the joiner's thread).
        backoff: delays between one host's tries.
    """

    def __init__(
        self,
        group: str,
        attempt: Callable[[str, threading.Event], Runtime | None],
        joined: Callable[[Runtime], None],
        backoff: Backoff = JOIN_BACKOFF,
    ) -> None:
        self._group = group
        self._attempt = attempt
        self._joined = joined
        self._backoff = backoff
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}  # host -> failed tries so far
        self._due: dict[str, float] = {}  # host -> monotonic time of its next try
        self._since: dict[str, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._abandon: threading.Event | None = None  # the try under way's
        self._job: Job | None = None

    def __repr__(self) -> str:
        return f"<Joiner {self._group} pending={self.pending}>"

    @property
    def pending(self) -> list[str]:
        """The hosts still being connected."""
        with self._lock:
            return list(self._pending)

    def add(self, host: str, error: BaseException) -> None:
        """Keep connecting ``host`` (its first try failed with ``error``); a permanent
        error is logged and the host dropped."""
        if is_permanent(error):
            log.warning("group.host.gave_up", group=self._group, host=host, error=str(error))
            return
        log.warning("group.host.waiting", group=self._group, host=host, error=str(error))
        with self._lock:
            if self._stop.is_set():
                return
            self._pending[host] = 1
            self._since[host] = time.monotonic()
            self._due[host] = time.monotonic() + self._backoff.delay(0)
            if self._job is None:
                self._job = THREADS.start(self._run, name=f"actorcluster-join-{self._group}")
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop trying (a try under way is abandoned, its runtime stopped); wait for
        the thread to end, up to ``timeout``."""
        with self._lock:
            self._stop.set()
            job = self._job
            self._pending.clear()  # no longer being connected
            self._due.clear()
            self._since.clear()
            if self._abandon is not None:
                self._abandon.set()
        self._wake.set()
        if job is not None and not job.is_current():
            job.join(timeout)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._lock:
                self._job = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    return
                host = min(self._due, key=self._due.__getitem__)
                wait = self._due[host] - time.monotonic()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            self._try(host)

    def _try(self, host: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            abandon = self._abandon = threading.Event()
        try:
            runtime = self._attempt(host, abandon)
        except ActorClusterError as error:
            self._failed(host, error)
            return
        finally:
            with self._lock:
                self._abandon = None
        if runtime is None:
            return  # abandoned: the joiner is stopping
        with self._lock:
            tries = self._pending.pop(host, 0) + 1
            self._due.pop(host, None)
            since = self._since.pop(host, time.monotonic())
        log.info(
            "group.host.joined",
            group=self._group,
            host=host,
            attempts=tries,
            waited_s=round(time.monotonic() - since, 3),
        )
        self._joined(runtime)

    def _failed(self, host: str, error: ActorClusterError) -> None:
        with self._lock:
            if host not in self._pending:
                return  # stopped meanwhile
            if is_permanent(error):
                self._pending.pop(host, None)
                self._due.pop(host, None)
                self._since.pop(host, None)
            else:
                tries = self._pending[host]
                self._pending[host] = tries + 1
                self._due[host] = time.monotonic() + self._backoff.delay(tries)
                return
        log.warning("group.host.gave_up", group=self._group, host=host, error=str(error))
