"""ProcessActor: one incarnation of a long-running command on a runtime, watched.

The command is a RUN request held open on the runtime's agent: it runs in a process
group of its own on the host, its output streams back (into the process's bounded
tail), and the agent's EXIT answer arrives the moment it ends, so an exit is noticed at
once, never polled. Stopping the actor cancels the request: the agent kills the whole
group (SIGTERM, a grace, SIGKILL). The actor holds no thread while the command runs.

An exit the actor did not ask for ends the actor the way its restart type reads it:
code 0 is a normal exit, anything else (a signal, a lost agent) a crash with
:class:`~actorcluster.errors.ProcessExitedError`; its supervisor then restarts it (with
its backoff and intensity) or not.

No actor waits for an agent in ``on_start``: one that finds none up waits without a
thread (``waiting for host``) until the runtime has an agent again, then starts the
command at once. Blocking there would deadlock a runtime whose whole subtree starts
again (its supervisor gave up on a long outage and its parent restarted it): the
processes start before the connection and the agent, each start waiting for the one
before it, so a process waiting for the agent held the agent's start up for the whole
wait, failed, and the next try did the same, for good.

With :attr:`ProcessSpec.wait_for_host` (``runtime.supervise``), the host being away is
not the process's fault: the actor never crashes for a lost host and waits as long as
it takes; a command that lived through the outage (the session was re-attached) simply
goes on. Neither counts toward its supervisor's intensity; each start after an outage
counts as a restart. Without it (a cluster's processes), a lost host is a crash, and so
is a wait for the agent longer than the runtime's ``reconnect_wait``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError, HostUnreachableError, ProcessExitedError
from actorcluster.observe import hooks as observe
from actorcluster.supervisors import Restart, SupervisedActor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.actors.process_state import ProcessState
    from actorcluster.remote import AgentClient, Call

__all__ = ["ProcessActor", "ProcessSpec", "ProcessStatistics"]

log = get_logger(__name__)

PID_MARKER = "actorcluster-pid="
"""The line a supervised command's shell prints first: its pid (the group's id)."""
_OUTPUT_IN_ERRORS = 2000
"""Characters of the latest output an exit error carries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """What to keep running."""

    name: str
    """The process's name (logs, errors, process keys)."""
    command: str
    """The shell command (``exec`` it to spare a shell in between)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables on the host."""
    cwd: str | None = None
    """Working directory on the host; None: the runtime's."""
    restart: Restart = Restart.PERMANENT
    """Its supervisor's restart type (decides what the state says after an exit)."""
    echo: bool = False
    """Also print its output here as it comes (``debug=True``)."""
    wait_for_host: bool = False
    """Wait for the host while it is away instead of failing (see the module
    docstring); False: a lost host is a crash, as a cluster's processes want today."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessStatistics:
    """A snapshot of a ProcessActor."""

    name: str
    """The process's name."""
    host: str
    """The runtime's host."""
    incarnation: int
    """Which start this actor is (1 for the first)."""
    running: bool
    """Whether its command still runs on the host."""


@dataclass(frozen=True, slots=True)
class _Exited:
    """Internal: the command's request ended (the process exited, or the agent went)."""

    code: int | None
    """Its exit code (negative: a signal); None: it could not run, or was lost."""
    error: str = ""
    """Why it could not run, or was lost."""
    lost: bool = False
    """Whether it was lost with its host."""


@dataclass(frozen=True, slots=True)
class _HostBack:
    """Internal: the runtime has an agent again (None: the wait timed out)."""

    client: AgentClient | None
    reason: str = ""
    """Why there is none (with ``client`` None)."""


class ProcessActor(SupervisedActor):
    """Runs one incarnation of a supervised process (see the module docstring).

    Args:
        context: the runtime's context (its agent client).
        spec: what to run.
        state: the record shared by every incarnation.
    """

    def __init__(self, context: RuntimeContext, spec: ProcessSpec, state: ProcessState) -> None:
        super().__init__()
        self._context = context
        self._spec = spec
        self._state = state
        self._call: Call[int] | None = None
        self._client: AgentClient | None = None
        self._output: _Output | None = None
        self._cancelling = False
        self._awaiting_host = False
        self._incarnation = 0
        self._log = log.bind(host=context.host, actor="process", process=spec.name)

    def __repr__(self) -> str:
        running = self._call is not None and not self._call.done()
        state = "RUNNING" if running else "ENDED"
        return f"<ProcessActor {self._context.host}/{self._spec.name} #{self._incarnation} {state}>"

    def statistics(self) -> ProcessStatistics:
        """A frozen snapshot of this actor's state."""
        return ProcessStatistics(
            name=self._spec.name,
            host=self._context.host,
            incarnation=self._incarnation,
            running=self._call is not None and not self._call.done(),
        )

    def on_start(self) -> None:
        """Send the command to the host; while the host is away, wait for it without a
        thread (see the module docstring)."""
        super().on_start()
        client = self._context.current_agent()
        if client is None:
            self._await_host()
            return
        self._launch(client)

    def _launch(self, client: AgentClient) -> None:
        spec, state = self._spec, self._state
        if state.finished:
            return  # stopped by its user meanwhile: this actor is about to be stopped too
        output = _Output(state, spec.echo)
        self._incarnation = state.began()  # first: its pid may come before run() returns
        observe.process_began(state, self._incarnation)
        try:
            call = client.run(
                f"printf '{PID_MARKER}%s\\n' \"$$\"; {spec.command}",
                env=spec.env,
                cwd=spec.cwd,
                on_output=output.add,
            )
        except ActorClusterError:
            state.not_begun()
            if not spec.wait_for_host:
                raise
            self._await_host()  # the session went just now
            return
        self._client, self._output, self._call = client, output, call
        call.add_done_callback(self._on_request_done)
        self._log.debug("process.started", incarnation=self._incarnation)

    def _await_host(self) -> None:
        """Wait (no thread held) until the runtime has an agent; then start."""
        self._state.waiting()
        if self._awaiting_host:
            return
        self._awaiting_host = True
        ref = self.actor_ref

        def host_back(client: AgentClient | None, error: BaseException | None) -> None:
            try:
                ref.tell(_HostBack(client, _reason(error)))
            except pykka.ActorDeadError:
                return  # stopped meanwhile

        self._context.when_agent(host_back)

    def _on_request_done(self, call: Call[int]) -> None:
        """On the session's reader thread: the request ended; record how in the state
        at once (before a new agent is published: a lost process never reads as
        running), then tell the actor. A request we cancelled ends before its process
        group is gone: :meth:`on_exit` confirms it."""
        if self._cancelling:
            return
        error, lost = "", False
        code: int | None
        try:
            code = call.result(0)
        except HostUnreachableError as exc:
            code, error, lost = None, str(exc), True  # the agent (and the process) went
        except ActorClusterError as exc:
            code, error = None, str(exc)  # the host refused to run it (a bad cwd, say)
        restart = self._spec.restart
        waits = lost and self._spec.wait_for_host and restart is not Restart.TEMPORARY
        restarting = (
            waits or restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and code != 0)
        )
        self._state.exited(code, restarting=restarting, lost=lost)
        observe.process_exited(self._state, self._incarnation, code, restarting)
        self._state.ended()
        try:
            self.actor_ref.tell(_Exited(code, error, lost))
        except pykka.ActorDeadError:
            return  # stopped meanwhile: the exit was ours

    def on_receive(self, message: Any) -> Any:
        """Dispatch."""
        match message:
            case _Exited():
                self._on_exited(message)
            case _HostBack(client=client, reason=reason):
                self._on_host_back(client, reason)
            case _:
                return super().on_receive(message)
        return None

    def _on_host_back(self, client: AgentClient | None, reason: str) -> None:
        self._awaiting_host = False
        if self._call is not None and not self._call.done():
            return  # it lived through the outage
        if client is None:
            if self._context.closed:
                return
            if not self._spec.wait_for_host:  # a crash, as a lost host is for it
                raise HostUnreachableError(self._context.host, reason or "no agent")
            self._await_host()  # still away: wait on (this never counts as a restart)
            return
        self._log.info("process.host_back", incarnation=self._incarnation)
        self._launch(client)

    def _on_exited(self, message: _Exited) -> None:
        code = message.code
        if message.lost:
            self._log.info("process.lost", incarnation=self._incarnation, error=message.error)
            if self._spec.wait_for_host and self._spec.restart is not Restart.TEMPORARY:
                self._await_host()  # not its fault: no crash, no intensity
                return
        self._log.info("process.exited", incarnation=self._incarnation, code=code)
        if code == 0:
            self._stop()
            return
        output = self._state.output.text(_OUTPUT_IN_ERRORS) or message.error
        raise ProcessExitedError(self._context.host, self._spec.name, code, output)

    def on_exit(self, error: BaseException | None) -> None:
        """Kill the command's process group if it still runs, without waiting (whoever
        stops many processes waits for them all at once, on their states): the agent
        kills the group (SIGTERM, a grace, SIGKILL) and a watch on the host tells the
        state when the group is gone."""
        call, client, output = self._call, self._client, self._output
        if call is None or call.done():
            return
        self._cancelling = True
        call.cancel()
        self._log.debug("process.stopping", incarnation=self._incarnation)
        pid = output.pid if output is not None else None
        if pid is None or client is None:
            self._state.ended()
            return
        try:
            watch = client.run(_WAIT_GONE.format(pgid=pid))
        except ActorClusterError:
            self._state.ended()  # the session is over: its agent killed the group
            return
        watch.add_done_callback(lambda _: self._state.ended())


def _reason(error: BaseException | None) -> str:
    """Why no agent came, without the "host X is unreachable" a raise adds again."""
    if isinstance(error, HostUnreachableError):  # (host, reason, ...)
        return str(error.args[1])
    return "" if error is None else str(error)


_WAIT_GONE = (
    "i=0; while kill -0 -- -{pgid} 2>/dev/null && [ $i -lt 1500 ]; do i=$((i+1)); sleep 0.02; done"
)
"""Returns once the process group is gone (at most 30 s)."""


class _Output:
    """A process's output on its way into the state's tail; the first line (the
    shell's pid, which is the process group's id) is taken out."""

    def __init__(self, state: ProcessState, echo: bool) -> None:
        self._state = state
        self._echo = echo
        self._head = b""
        self.pid: int | None = None
        self._seen = False

    def add(self, fd: int, data: bytes) -> None:
        """On the session's reader thread: keep (and maybe print) a piece of output."""
        if not self._seen and fd == 1:
            self._head += data
            marker = PID_MARKER.encode()
            if b"\n" not in self._head and len(self._head) < 64:
                return
            self._seen = True
            line, _, data = self._head.partition(b"\n")
            if line.startswith(marker) and line[len(marker) :].isdigit():
                self.pid = int(line[len(marker) :])
                self._state.pid = self.pid
            else:
                data = self._head
        if not data:
            return
        self._state.output.add(data)
        if self._echo:
            stream = sys.stderr if fd == 2 else sys.stdout
            stream.write(data.decode("utf-8", errors="replace"))
            stream.flush()
