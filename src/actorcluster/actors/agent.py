"""AgentActor: starts the remote agent over the connection and watches it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import AgentLostError, AgentStartError, PathCreationError
from actorcluster.remote.agent.frames import Kind
from actorcluster.remote.bootstrap import first_stage, remote_command, stage_two
from actorcluster.remote.client import AgentClient
from actorcluster.remote.streams import ChannelStream, PipeStream
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.remote.streams import ByteStream

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
    """Owns one :class:`AgentClient`: starts the agent in ``on_start``, sets up the
    working directory, publishes the client, and crashes when the agent is lost so its
    supervisor starts a new one (or, when the connection itself is gone, leaves that to
    the connection's restart)."""

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
        client = AgentClient(
            self._open_stream(),
            self._context.host,
            on_lost=self._on_lost,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        try:
            hello = client.start(stage_two().wire_bytes(), options.agent_start_timeout)
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
        channel = connection.open_session(window_size=_CHANNEL_WINDOW)
        channel.exec_command(remote_command(options.python))
        return ChannelStream(channel)

    def _setup_working_dir(self, client: AgentClient) -> None:
        context = self._context
        timeout = context.options.agent_start_timeout
        if context.working_dir is None:
            frame = client.call(
                Kind.FS, {"op": "mkdtemp", "prefix": "actorcluster-", "temporary": True}, timeout
            )
            if frame.kind != Kind.RESULT:
                raise PathCreationError(
                    "<temporary>", context.host, frame.payload.get("message", "")
                )
            context.working_dir = str(frame.payload["value"])
        payload = {
            "working_dir": context.working_dir,
            "temporary": context.temporary_working_dir,
            "env": {},
        }
        if context.options.shell:
            payload["shell"] = context.options.shell
        frame = client.call(Kind.SETUP, payload, timeout)
        if frame.kind != Kind.RESULT:
            message = str(frame.payload.get("message", frame.payload))
            raise PathCreationError(context.working_dir, context.host, message)
        context.working_dir = str(frame.payload["value"])

    def _on_lost(self, error: AgentLostError) -> None:
        connection = self._context.connection
        self._context.set_agent(None, str(error))
        if connection is not None and "heartbeat" in str(error):
            connection.close()  # a silent peer: reconnect from scratch
        if connection is not None and not connection.is_active():
            return  # the connection's own restart brings up a new agent
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
