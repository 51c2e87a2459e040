"""The client's half of module shipping: it answers an agent's MODULE requests.

An agent whose function imports a module the host lacks asks for it by name (see
:mod:`actorcluster.remote.agent.imports`); :class:`ModuleServer` answers with the
source, or the reason it is not sent (:func:`~actorcluster.remote.module_lookup.answer_for`).
A found module's answer carries a bundle: the modules its source imports (same
package, or the user's own), so a package costs one round trip, not one per module
(:mod:`~actorcluster.remote.module_closure`; an agent keeps them as answers received).
It also hears which versions of modules the host used from its own copies, and logs a
difference with the client's once per module.

The session's reader thread only hands a request over: looking a module up reads
files, so it runs on a small worker of the process (at most :data:`WORKERS` threads,
which end after a second with nothing to do), and the answer is sent from there.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger
from actorcluster._workers import Workers
from actorcluster.errors import AgentLostError
from actorcluster.remote.agent.frames import FrameError, Kind
from actorcluster.remote.agent.versions import module_version
from actorcluster.remote.module_closure import bundle_for
from actorcluster.remote.module_gate import gate_refusal
from actorcluster.remote.module_lookup import (
    ModulePolicy,
    answer_for,
    client_spec,
    valid_module_name,
)

if TYPE_CHECKING:
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


_WORKER = Workers("actorcluster-modules", limit=WORKERS, linger=1.0)
"""Looks modules up; an idle thread waits a second for more (an import chain asks one
module after another), then ends."""


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
        self._sent: set[str] = set()
        """Modules this session's agent was sent (never bundled again)."""
        self._lock = threading.Lock()
        self._queued = 0
        self.taken = 0
        """Requests the agent sent (MODULE and MODULE_VERSION)."""
        self.dropped = 0
        """Requests dropped because too many of this session's waited already."""
        self.asked = 0
        """MODULE requests answered so far (each one round trip of an import's)."""
        self.served = 0
        """Modules sent so far (bundled ones included)."""
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
        bundle: list[dict[str, object]] = []
        if found:
            with self._lock:
                sent = set(self._sent)
            try:
                bundle = bundle_for(answer, self._policy, sent)
            except Exception as exc:  # a bundle is a saving, never a reason to fail
                log.warning("modules.bundle_failed", host=self._host, module=name, error=repr(exc))
        with self._lock:  # two workers may answer for one session at once
            self.asked += 1
            self.served += found + len(bundle)
            if found:
                self._sent.add(answer["name"])
                self._sent.update(str(extra["name"]) for extra in bundle)
        log.debug(
            "modules.answered", host=self._host, module=name, found=found, bundled=len(bundle)
        )
        if not found:
            log.debug(
                "modules.not_sent",
                host=self._host,
                module=answer["name"],
                reason=answer.get("refused"),
            )
            bundle = []
        else:
            log.debug("modules.sent", host=self._host, module=name, size=len(answer["source"]))
        for extra in bundle:  # one event per module the host gets, as if it had asked
            log.debug(
                "modules.sent",
                host=self._host,
                module=extra["name"],
                size=len(extra["source"]),  # type: ignore[arg-type]
                bundled_with=name,
            )
        try:
            if bundle:
                try:
                    self._session.send(Kind.MODULE_SOURCE, request_id, {**answer, "bundle": bundle})
                    return
                except FrameError:  # too much for one frame: the module alone, then
                    with self._lock:
                        self._sent.difference_update(str(extra["name"]) for extra in bundle)
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
