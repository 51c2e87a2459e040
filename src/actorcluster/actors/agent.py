"""AgentActor: starts the remote agent over the connection and watches it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import (
    AgentLostError,
    AgentStartError,
    PathCreationError,
    RemoteOperationError,
)
from actorcluster.remote import (
    AgentClient,
    AgentSession,
    PipeStream,
    first_stage,
    remote_command,
    stage_two,
)
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.remote import ByteStream

__all__ = ["AgentActor", "AgentStatistics"]

log = get_logger(__name__)

_CHANNEL_WINDOW = 2 * 1024 * 1024
"""The agent channel's receive window: what sshd may send before we ack. OpenSSH's own
client uses 2 MiB. Larger is slower here: with 16 or 64 MiB, sshd spends 5-7x the CPU
per byte (3.3 s instead of 0.5 s for 200 MB) and get_file of 200 MB drops from ~300 to
40-130 MB/s (benchmarks/README.md, "Findings"). Uploads are paced by sshd's window."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStatistics:
    """A snapshot of an AgentActor."""

    host: str
    """The runtime's host."""
    alive: bool
    """Whether the agent answers."""
    pid: int | None
    """The agent's process id on the host."""
    python: str | None
    """The agent's Python version."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _AgentLost:
    """Internal: the agent's stream ended or it stopped answering."""

    error: AgentLostError
    """Why."""


class AgentActor(SupervisedActor):
    """Owns one agent session: starts the agent in ``on_start``, sets up the working
    directory, publishes the client, and crashes when the agent is lost so its
    supervisor starts a new one. When the connection itself is gone (or silent), it
    reports that to the connection instead, whose restart brings a new agent too."""

    def __init__(self, context: RuntimeContext) -> None:
        super().__init__()
        self._context = context
        self._client: AgentClient | None = None
        self._log = log.bind(host=context.host, actor="agent")

    def __repr__(self) -> str:
        state = "READY" if self._client is not None and self._client.alive else "DOWN"
        return f"<AgentActor {self._context.host} {state}>"

    def statistics(self) -> AgentStatistics:
        """A frozen snapshot of this actor's state."""
        client = self._client
        hello = client.hello if client is not None else {}
        return AgentStatistics(
            host=self._context.host,
            alive=client is not None and client.alive,
            pid=hello.get("pid"),
            python=hello.get("python"),
        )

    def on_start(self) -> None:
        """Start the agent and set up the working directory."""
        super().on_start()
        options = self._context.options
        session = AgentSession(
            self._open_stream(),
            self._context.host,
            on_lost=self._on_lost,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        client = AgentClient(session)
        try:
            hello = session.start(stage_two().wire_bytes(), options.agent_start_timeout)
            self._setup_working_dir(client)
        except BaseException:
            client.close("agent start failed")
            raise
        self._client = client
        self._log.info("agent.started", pid=hello.get("pid"), python=hello.get("python"))
        self._context.set_agent(client)

    def _open_stream(self) -> ByteStream:
        options = self._context.options
        if options.is_local:
            process = subprocess.Popen(
                [options.python or sys.executable, "-c", first_stage()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            return PipeStream(process)
        connection = self._context.connection
        if connection is None:
            raise AgentStartError(self._context.host, "no SSH connection")
        return connection.open_command_stream(
            remote_command(options.python),
            window_size=_CHANNEL_WINDOW,
            timeout=options.heartbeat_timeout,
        )

    def _setup_working_dir(self, client: AgentClient) -> None:
        context = self._context
        timeout = context.options.agent_start_timeout
        working_dir = context.working_dir
        try:
            if working_dir is None:
                working_dir = client.mkdtemp(temporary=True).result(timeout)
            setup = client.setup(
                working_dir,
                temporary=context.temporary_working_dir,
                shell=context.options.shell,
            )
            context.working_dir = setup.result(timeout)
        except RemoteOperationError as exc:
            raise PathCreationError(working_dir or "<temporary>", context.host, exc.reason) from exc

    def _on_lost(self, error: AgentLostError) -> None:
        """On the session's thread: unpublish, then have the right actor restart."""
        context = self._context
        context.set_agent(None, str(error))
        connection = context.connection
        if connection is not None and (
            error.kind == AgentLostError.SILENT or not connection.is_active()
        ):
            context.connection_lost(str(error))  # reconnect from scratch
            return
        try:
            self.actor_ref.tell(_AgentLost(error=error))
        except Exception:  # already stopping
            return

    def on_receive(self, message: Any) -> Any:
        """Dispatch: a lost agent crashes the actor so its supervisor restarts it."""
        match message:
            case _AgentLost(error=error):
                raise error
            case _:
                return super().on_receive(message)

    def on_exit(self, error: BaseException | None) -> None:
        """Close the agent (it kills what it started and removes temporary dirs)."""
        self._context.set_agent(None)
        if self._client is not None:
            self._client.close("the agent actor stopped")
            self._client = None
