"""How a runtime's agent is started and reached: an :class:`AgentTransport`.

A transport hands back the byte streams of an agent (a new one, or, where the agent
outlives its stream, the same one again) and says how long an agent outlives a lost
stream. :class:`LocalTransport` runs the agent as a child process of this one, over
pipes; :class:`SshTransport` runs it through the runtime's SSH connection. The agent
actor never asks which one it has (as mitogen's ``Stream`` classes: ssh, local, sudo,
docker); a ``DockerTransport`` (``docker exec -i``) or a ``KubectlTransport``
(``kubectl exec -i``) would be two more of these. :func:`transport_for` is the one
place that picks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Protocol

from actorcluster._limits import Deadline
from actorcluster.errors import AgentStartError
from actorcluster.remote import PipeStream, attach_command, first_stage, remote_command

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.remote import ByteStream
    from actorcluster.ssh import SshConnection

__all__ = ["AgentTransport", "LocalTransport", "SshTransport", "transport_for"]

CHANNEL_WINDOW = 2 * 1024 * 1024
"""The agent channel's receive window: what sshd may send before we ack. OpenSSH's own
client uses 2 MiB. Larger is slower here: with 16 or 64 MiB, sshd spends 5-7x the CPU
per byte (3.3 s instead of 0.5 s for 200 MB) and get_file of 200 MB drops from ~300 to
40-130 MB/s (benchmarks/README.md, "Findings"). Uploads are paced by sshd's window."""


class AgentTransport(Protocol):
    """Starts a runtime's agent and hands back its byte streams."""

    @property
    def session_grace(self) -> float:
        """Seconds the agent outlives a lost stream, waiting to be re-attached (0: it
        ends with its stream, and :meth:`reattach` is never tried)."""

    def open_agent(self) -> ByteStream:
        """Start a new agent (its first stage); its stdin and stdout as one stream.

        Raises:
            ActorClusterError: it could not be started (typed by the cause).
            OSError: the program could not be run.
        """

    def reattach(self, socket: str) -> ByteStream:
        """A new stream to the running agent listening at ``socket`` on its host.

        Raises:
            AgentStartError: this transport cannot re-attach, or has no connection.
        """

    def dropped(self, settle: float) -> bool:
        """Whether the connection the streams run through is gone (a stream that ended
        may have ended with it), waiting up to ``settle`` seconds for it to show."""


class LocalTransport:
    """The agent as a child process of this one, over pipes (the runtime "localhost").

    Args:
        context: the runtime's shared state (its options: the Python to run).
    """

    session_grace = 0.0
    """A local agent ends with its pipes: nothing to re-attach to."""

    def __init__(self, context: RuntimeContext) -> None:
        self._context = context

    def __repr__(self) -> str:
        return f"<LocalTransport {self._context.host}>"

    def open_agent(self) -> ByteStream:
        """Run the first stage under the runtime's Python (default: this one's)."""
        process = subprocess.Popen(
            [self._context.options.python or sys.executable, "-c", first_stage()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return PipeStream(process)

    def reattach(self, socket: str) -> ByteStream:
        """Never possible: the agent ended with its pipes."""
        raise AgentStartError(self._context.host, "a local agent cannot be re-attached")

    def dropped(self, settle: float) -> bool:
        """Never: pipes have no connection to lose."""
        return False


class SshTransport:
    """The agent on the runtime's host, run through its SSH connection (an exec
    channel); it outlives a lost connection for the session's grace.

    Args:
        context: the runtime's shared state (its options and current connection).
    """

    def __init__(self, context: RuntimeContext) -> None:
        self._context = context

    def __repr__(self) -> str:
        return f"<SshTransport {self._context.host}>"

    @property
    def session_grace(self) -> float:
        """The runtime's ``session_grace`` option."""
        return self._context.options.session_grace

    def open_agent(self) -> ByteStream:
        """Run the first stage on the host (under its login shell)."""
        options = self._context.options
        return self._connection().open_command_stream(
            remote_command(options.python),
            window_size=CHANNEL_WINDOW,
            timeout=options.heartbeat_timeout,
        )

    def reattach(self, socket: str) -> ByteStream:
        """Run the attach stub on the host, connected to the agent's socket."""
        options = self._context.options
        return self._connection().open_command_stream(
            attach_command(socket, options.python),
            window_size=CHANNEL_WINDOW,
            timeout=options.heartbeat_timeout,
        )

    def dropped(self, settle: float) -> bool:
        """Whether the runtime's SSH connection is gone. paramiko ends a dead
        connection's channels before it marks the connection inactive, so a stream may
        see its end first: wait up to ``settle`` seconds for that."""
        deadline = Deadline(settle)
        while True:
            connection = self._context.connection
            if connection is None or not connection.is_active():
                return True
            if deadline.expired():
                return False
            time.sleep(0.02)

    def _connection(self) -> SshConnection:
        connection = self._context.connection
        if connection is None:
            raise AgentStartError(self._context.host, "no SSH connection")
        return connection


def transport_for(context: RuntimeContext) -> AgentTransport:
    """The transport that reaches ``context``'s runtime: the one place that asks
    whether a runtime is local."""
    if context.options.is_local:
        return LocalTransport(context)
    return SshTransport(context)
