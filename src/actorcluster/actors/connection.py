"""ConnectionActor: owns one runtime's SSH connection (none for the local runtime)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import HostUnreachableError
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
    """Internal: the transport ended while we did not close it."""

    reason: str
    """What the watcher saw."""


class ConnectionActor(SupervisedActor):
    """Connects in ``on_start``; crashes (for its supervisor to reconnect) when the
    transport dies; closes in ``on_stop``/``on_failure``.

    A watcher thread joins paramiko's transport thread, which ends exactly when the
    connection does; keepalives (ServerAliveInterval) and the agent's heartbeats make
    a silent peer end it too.
    """

    def __init__(self, context: RuntimeContext) -> None:
        super().__init__()
        self._context = context
        self._connection: SshConnection | None = None
        self._closing = threading.Event()
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
        """Connect (nothing to do for the local runtime) and start the watcher."""
        super().on_start()
        target = self._context.options.target
        if target is None:
            return
        from actorcluster.ssh import connect

        self._connection = connect(target)
        self._context.set_connection(self._connection)
        watcher = threading.Thread(
            target=self._watch, name=f"actorcluster-conn-watch-{self._context.host}", daemon=True
        )
        watcher.start()

    def _watch(self) -> None:
        assert self._connection is not None
        self._connection.transport.join()
        if not self._closing.is_set():
            self._log.warning("ssh.connection.lost")
            try:
                self.actor_ref.tell(_ConnectionLost(reason="the SSH connection ended"))
            except Exception:  # the actor is already gone: nothing to tell
                return

    def on_receive(self, message: Any) -> Any:
        """Dispatch: a lost connection crashes the actor so its supervisor reconnects."""
        match message:
            case _ConnectionLost(reason=reason):
                raise HostUnreachableError(self._context.host, reason)
            case _:
                return super().on_receive(message)

    def on_exit(self, error: BaseException | None) -> None:
        """Close the connection."""
        self._closing.set()
        self._context.set_connection(None)
        if self._connection is not None:
            self._connection.close()
            self._connection = None
