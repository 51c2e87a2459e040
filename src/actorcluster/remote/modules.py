"""The client's half of module shipping: it answers an agent's MODULE requests.

An agent whose function imports a module the host lacks asks for it by name (see
:mod:`actorcluster.remote.agent.imports`); :class:`ModuleServer` answers with the
source, or the reason it is not sent (:func:`~actorcluster.remote.module_lookup.answer_for`).
It also hears which versions of modules the host used from its own copies, and logs a
difference with the client's once per module.

The session's reader thread only hands a request over: looking a module up reads
files, so it runs on a small worker of the process (at most :data:`WORKERS` threads,
which end after a second with nothing to do), and the answer is sent from there.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster.errors import AgentLostError
from actorcluster.remote.agent.frames import FrameError, Kind
from actorcluster.remote.agent.versions import module_version
from actorcluster.remote.module_gate import gate_refusal
from actorcluster.remote.module_lookup import (
    ModulePolicy,
    answer_for,
    client_spec,
    valid_module_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.remote.agent.frames import Frame
    from actorcluster.remote.session import AgentSession

__all__ = ["QUEUE_LIMIT", "REQUEST_KINDS", "WORKERS", "ModulePolicy", "ModuleServer"]

log = get_logger(__name__)

REQUEST_KINDS = frozenset({Kind.MODULE, Kind.MODULE_VERSION})
"""Frames an agent sends of its own accord (not replies to the client's requests)."""
WORKERS = 2
"""Threads that look modules up, at most, in the whole process."""
QUEUE_LIMIT = 256
"""Requests of one session waiting for the worker, at most; more are dropped (an agent
asks once per importing thread: only a hostile one gets near it)."""
_VERSION_TEXT = 100
_COMPARED_LIMIT = 10_000
"""Modules whose versions one session compares, at most (each once)."""


class _Worker:
    """Runs jobs on at most ``limit`` threads; a thread with nothing to do waits
    ``linger`` seconds for more (an import chain asks one module after another), then
    ends."""

    def __init__(self, name: str, limit: int, linger: float) -> None:
        self._name = name
        self._limit = limit
        self._linger = linger
        self._condition = threading.Condition()
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` soon, on a worker thread."""
        with self._condition:
            self._jobs.append(job)
            if self._idle:
                self._condition.notify()
                return
            if self._threads >= self._limit:
                return
            self._threads += 1
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._jobs:
                    self._idle += 1
                    self._condition.wait(self._linger)
                    self._idle -= 1
                    if not self._jobs:
                        self._threads -= 1
                        return
                job = self._jobs.popleft()
            try:
                job()
            except Exception as exc:  # one failed job must not end the worker
                log.error("modules.job_failed", error=repr(exc))


_WORKER = _Worker("actorcluster-modules", WORKERS, linger=1.0)


class ModuleServer:
    """Answers one session's module requests under one runtime's policy.

    Args:
        session: the agent session (its requests arrive here, answers go back on it).
        policy: what may be shipped.
    """

    def __init__(self, session: AgentSession, policy: ModulePolicy) -> None:
        self._session = session
        self._policy = policy
        self._host = session.host
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self._queued = 0
        self.taken = 0
        """Requests the agent sent (MODULE and MODULE_VERSION)."""
        self.dropped = 0
        """Requests dropped because too many of this session's waited already."""
        self.asked = 0
        """MODULE requests answered so far (each one round trip of an import's)."""
        self.served = 0
        """Modules sent so far."""
        session.on_request = self.take

    def __repr__(self) -> str:
        return f"<ModuleServer {self._host} asked={self.asked} served={self.served}>"

    @property
    def waiting(self) -> int:
        """Requests of this session waiting for (or on) the worker now."""
        return self._queued

    def take(self, frame: Frame) -> None:
        """A request from the agent (on the reader thread): handed to the worker."""
        with self._lock:
            self.taken += 1
            flooded = self._queued >= QUEUE_LIMIT
            if flooded:
                self.dropped += 1
            else:
                self._queued += 1
        if flooded:
            if self.dropped == 1:
                log.warning("modules.requests_dropped", host=self._host, waiting=QUEUE_LIMIT)
            return
        _WORKER.submit(lambda: self._serve(frame))

    def _serve(self, frame: Frame) -> None:
        try:
            if frame.kind == Kind.MODULE:
                self._answer(frame.request_id, frame.payload.get("name"))
            elif frame.kind == Kind.MODULE_VERSION:
                self._compare(frame.payload.get("name"), frame.payload.get("version"))
        finally:
            with self._lock:
                self._queued -= 1

    def _answer(self, request_id: int, name: object) -> None:
        answer = gate_refusal(name, self._session) or answer_for(name, self._policy)
        found = bool(answer.get("found"))
        with self._lock:  # two workers may answer for one session at once
            self.asked += 1
            self.served += found
        if found:
            log.debug("modules.sent", host=self._host, module=name, size=len(answer["source"]))
        else:
            log.debug(
                "modules.not_sent",
                host=self._host,
                module=answer["name"],
                reason=answer.get("refused"),
            )
        try:
            self._session.send(Kind.MODULE_SOURCE, request_id, answer)
        except AgentLostError:
            return  # the session is over: nobody waits for the answer
        except FrameError as exc:  # a module too big for one frame, say: refuse it
            refusal = {"name": answer["name"], "found": False, "refused": str(exc)}
            self._session.send(Kind.MODULE_SOURCE, request_id, refusal)

    def _compare(self, name: object, host_version: object) -> None:
        """The host used its own copy of top-level module ``name``: log a difference
        with the client's version, once per module."""
        if not valid_module_name(name) or not isinstance(host_version, str):
            return
        assert isinstance(name, str)
        with self._lock:
            if "." in name or name in self._logged or len(self._logged) >= _COMPARED_LIMIT:
                return
            self._logged.add(name)
        spec = client_spec(name)
        if spec is None:
            return
        client_version = module_version(name, spec.origin, thorough=True)
        host_version = host_version[:_VERSION_TEXT]
        if client_version is None or client_version == host_version:
            return
        log.warning(
            "modules.version_skew",
            host=self._host,
            module=name,
            host_version=host_version,
            client_version=client_version,
            used="client" if self._policy.prefer_client else "host",
        )
