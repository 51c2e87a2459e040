"""ConnectionActor: owns one runtime's SSH connection (none for the local runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.errors import HostUnreachableError
from actorcluster.observe import hooks as observe
from actorcluster.ssh import connect, keeper_connect
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.ssh import SshConnection

__all__ = ["ConnectionActor", "ConnectionStatistics"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionStatistics:
    """A snapshot of a ConnectionActor."""

    host: str
    """The runtime's host."""
    connected: bool
    """Whether the SSH transport is up (always False for the local runtime)."""
    cipher: str | None
    """The negotiated cipher, when connected."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _ConnectionLost:
    """Internal: the connection died, or its peer went silent."""

    reason: str
    """What was seen."""


class ConnectionActor(SupervisedActor):
    """Connects in ``on_start``; crashes (for its supervisor to reconnect) when the
    connection is reported lost; closes it in :meth:`on_exit`.

    Nothing here watches the connection with a thread of its own: whatever notices that
    it died or went silent (the agent session's reader and heartbeats, above all)
    reports it through :meth:`RuntimeContext.connection_lost`.
    """

    def __init__(self, context: RuntimeContext) -> None:
        super().__init__()
        self._context = context
        self._connection: SshConnection | None = None
        self._log = log.bind(host=context.host, actor="connection")

    def __repr__(self) -> str:
        state = "CONNECTED" if self._connection is not None else "LOCAL-OR-DOWN"
        return f"<ConnectionActor {self._context.host} {state}>"

    def statistics(self) -> ConnectionStatistics:
        """A frozen snapshot of this actor's state."""
        connection = self._connection
        return ConnectionStatistics(
            host=self._context.host,
            connected=connection is not None and connection.is_active(),
            cipher=connection.cipher if connection is not None else None,
        )

    def on_start(self) -> None:
        """Connect (nothing to do for the local runtime) and publish the connection."""
        super().on_start()
        observe.runtime_state(self._context, "connecting")
        options = self._context.options
        target = options.target
        if target is None:
            return
        try:
            if options.keeper:
                self._connection = keeper_connect(options.host, target, options.keeper_kwargs)
            else:
                self._connection = connect(target)
        except Exception as exc:
            self._context.reconnect_failed(exc)
            raise
        self._context.set_connection(self._connection, self._report_lost)

    def _report_lost(self, reason: str) -> None:
        try:
            self.actor_ref.tell(_ConnectionLost(reason=reason))
        except pykka.ActorDeadError:
            return  # stopping anyway

    def on_receive(self, message: Any) -> Any:
        """Dispatch: a lost connection crashes the actor so its supervisor reconnects."""
        match message:
            case _ConnectionLost(reason=reason):
                self._log.debug("ssh.connection.lost", reason=reason)
                self._context.host_down(reason)
                raise HostUnreachableError(self._context.host, reason)
            case _:
                return super().on_receive(message)

    def on_exit(self, error: BaseException | None) -> None:
        """Close the connection."""
        self._context.set_connection(None)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
