"""TunnelActor: one port exposure (a local or a remote forward) of a runtime."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError
from actorcluster.observe.bus import emit
from actorcluster.observe.events import TunnelClosed, TunnelOpened
from actorcluster.supervisors import Backoff, ChildSpec, Restart, SupervisedActor, SystemClock
from actorcluster.tunnels import open_forwarder

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.supervisors import Cancellable, Clock
    from actorcluster.tunnels import Forwarder, TunnelSpec

__all__ = ["TunnelActor", "TunnelStatistics", "tunnel_child_spec"]

log = get_logger(__name__)

RETRY_BACKOFF = Backoff(initial=0.2, maximum=2.0, multiplier=2.0, jitter=0.1)
"""Waits between attempts to re-open a tunnel after a reconnect: 0.2 s doubling to 2 s."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelStatistics:
    """A snapshot of a TunnelActor."""

    key: str
    """The tunnel's process key."""
    up: bool
    """Whether its listener is open now."""
    failed_opens: int
    """Attempts to open it that failed (each retried after a backoff)."""
    connections: int | None = None
    """Connections open through it now (None: its carrier does not tell, ``ssh -N``)."""
    bytes: int | None = None
    """Bytes carried both ways so far (None: its carrier does not tell)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Retry:
    """Internal: try to open the tunnel again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Broken:
    """Internal: the forwarder broke by itself (listener error, ssh exited)."""

    reason: str
    """What happened."""


class TunnelActor(SupervisedActor):
    """Owns one forwarder: opens it in ``on_start``, closes it in ``on_stop``/``on_failure``.

    Permanent child of its runtime's TunnelSupervisor. A forwarder that breaks by itself
    crashes the actor, so the supervisor opens a new one. After a reconnect the
    supervisor starts the actor again from the runtime's registry of wanted tunnels;
    then an open that fails (the port still held on the host, say) does not fail the
    start but is retried after :data:`RETRY_BACKOFF` (on the injected clock), logging
    ``tunnel.open_failed`` once and ``tunnel.up`` when it worked.

    Args:
        context: the runtime's shared state.
        spec: the tunnel.
        strict: an open that fails fails the start (the user's own call), instead of
            being retried.
        clock: time for the retries; :class:`~actorcluster.supervisors.SystemClock`
            if None.
    """

    def __init__(
        self,
        context: RuntimeContext,
        spec: TunnelSpec,
        *,
        strict: bool,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self._context = context
        self._spec = spec
        self._strict = strict
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._forwarder: Forwarder | None = None
        self._failed_opens = 0
        self._timer: Cancellable | None = None
        self._log = log.bind(
            host=spec.host,
            key=spec.key,
            direction=spec.direction,
            local_port=spec.local_port,
            runtime_port=spec.runtime_port,
        )

    def __repr__(self) -> str:
        return f"<TunnelActor {self._spec.key} {'UP' if self._forwarder else 'DOWN'}>"

    def on_start(self) -> None:
        """Open the forwarder (or schedule a retry, unless strict)."""
        super().on_start()
        if not self._context.has_tunnel(self._spec.key):
            return  # stopped by its user while the supervisor was restarting
        try:
            self._open()
        except ActorClusterError as exc:
            if self._strict:
                raise
            self._open_failed(exc)

    def on_receive(self, message: Any) -> Any:
        """Dispatch: retries, and a broken forwarder (which crashes the actor)."""
        match message:
            case _Retry():
                self._on_retry()
            case _Broken(reason=reason):
                raise ActorClusterError(f"tunnel {self._spec.key} broke: {reason}")
            case _:
                return super().on_receive(message)
        return None

    def statistics(self) -> TunnelStatistics:
        """A frozen snapshot."""
        relays = getattr(self._forwarder, "relays", None)  # the paramiko carrier's
        return TunnelStatistics(
            key=self._spec.key,
            up=self._forwarder is not None,
            failed_opens=self._failed_opens,
            connections=len(relays) if relays is not None else None,
            bytes=relays.bytes_carried() if relays is not None else None,
        )

    def on_exit(self, error: BaseException | None) -> None:
        """Close the forwarder: the listener and every connection."""
        self._release("stopped" if error is None else f"failed: {error}")

    def _open(self) -> None:
        forwarder = self._forwarder = open_forwarder(self._context, self._spec, self._on_broken)
        self._log.info("tunnel.up", carrier=forwarder.carrier, failed_opens=self._failed_opens)
        emit(TunnelOpened, host=self._spec.host, tunnel=self._spec.key, carrier=forwarder.carrier)

    def _open_failed(self, error: Exception) -> None:
        self._failed_opens += 1
        delay = RETRY_BACKOFF.delay(self._failed_opens - 1, random.random)
        if self._failed_opens == 1:
            self._log.warning("tunnel.open_failed", error=str(error), retry_in=delay)
        else:
            self._log.debug("tunnel.open_failed", error=str(error), retry_in=delay)
        self._timer = self._clock.call_later(delay, lambda: self._tell(_Retry()))

    def _on_retry(self) -> None:
        if self._forwarder is not None or not self._context.has_tunnel(self._spec.key):
            return
        try:
            self._open()
        except ActorClusterError as exc:
            self._open_failed(exc)

    def _on_broken(self, reason: str) -> None:
        self._tell(_Broken(reason=reason))

    def _tell(self, message: object) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            return  # stopped meanwhile: nothing to do

    def _release(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        forwarder, self._forwarder = self._forwarder, None
        if forwarder is None:
            return
        forwarder.close()
        wanted = self._context.has_tunnel(self._spec.key) and not self._context.stopping
        if wanted and reason == "stopped":
            reason = "the runtime is reconnecting"
        # The runtime itself warns when its host goes away and when it is back.
        self._log.info("tunnel.down", reason=reason, wanted=wanted)
        emit(TunnelClosed, host=self._spec.host, tunnel=self._spec.key, reason=reason)


def tunnel_child_spec(context: RuntimeContext, spec: TunnelSpec, *, strict: bool) -> ChildSpec:
    """The permanent child spec of a tunnel, its id the tunnel's key.

    Only the first start may be ``strict``: restarts retry instead of failing.
    """
    first = [strict]

    def start() -> pykka.ActorRef[Any]:
        strict_now, first[0] = first[0], False
        return TunnelActor.start(context, spec, strict=strict_now)

    return ChildSpec(id=spec.key, start=start, restart=Restart.PERMANENT, shutdown_timeout=5.0)
