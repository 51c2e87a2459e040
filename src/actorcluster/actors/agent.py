"""AgentActor: brings a runtime's agent session up (a new agent, or the same one again
after a reconnect) and watches it."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import AGENT_KILL_TIMEOUT as _KILL_TIMEOUT
from actorcluster._limits import REATTACH_TIMEOUT as _REATTACH_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.actors.transports import transport_for
from actorcluster.errors import (
    ActorClusterError,
    AgentLostError,
    AgentStartError,
    PathCreationError,
    RemoteOperationError,
)
from actorcluster.remote import (
    AgentClient,
    AgentSession,
    ModulePolicy,
    ModuleServer,
    kill_command,
    source_stage,
    stage_two,
)
from actorcluster.ssh import connect
from actorcluster.supervisors import SupervisedActor

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext, RuntimeOptions
    from actorcluster.remote import ByteStream

__all__ = ["AgentActor", "AgentStatistics", "close_session", "kill_agent"]

log = get_logger(__name__)

_DROP_SETTLE = 1.0
"""Seconds a failed re-attach waits to see whether its connection dropped."""
_CLOSE_ANSWER = 1.0
"""Seconds an agent told to CLOSE has to end its stream before it is killed by pid."""
_MODULE_ANSWER_MARGIN = 5.0
"""Seconds an import on the host waits for a module, past the time a reconnect takes."""


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
    reattaches: int
    """How many times this runtime's session was taken up again after a reconnect."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _AgentLost:
    """Internal: the agent's stream ended or it stopped answering."""

    error: AgentLostError
    """Why."""


class AgentActor(SupervisedActor):
    """Owns the runtime's agent session while it runs.

    ``on_start`` re-attaches to the session the runtime already has (after a reconnect:
    its commands went on meanwhile) or, if there is none or it cannot be resumed,
    starts a new agent (killing a hung old one by pid first) and sets up the working
    directory. A lost stream crashes the actor so its supervisor starts it again; when
    the connection itself is gone or silent, the connection is restarted instead (and
    this actor with it). Stopping with the runtime ends the session on the host.
    """

    def __init__(self, context: RuntimeContext) -> None:
        super().__init__()
        self._context = context
        self._transport = transport_for(context)
        self._log = log.bind(host=context.host, actor="agent")

    def __repr__(self) -> str:
        session = self._context.session
        state = "READY" if session is not None and session.alive else "DOWN"
        return f"<AgentActor {self._context.host} {state}>"

    def statistics(self) -> AgentStatistics:
        """A frozen snapshot of this actor's state."""
        session = self._context.session
        hello = session.hello if session is not None else {}
        return AgentStatistics(
            host=self._context.host,
            alive=session is not None and session.alive,
            pid=hello.get("pid"),
            python=hello.get("python"),
            reattaches=self._context.reattaches,
        )

    def on_start(self) -> None:
        """Take the session up again, or start a new agent; then publish it."""
        super().on_start()
        context = self._context
        context.set_agent_actor(self._report_lost)
        session = context.session
        resumed = "resumed"
        if session is not None and session.resumable:
            try:
                self._reattach(session)
            except ActorClusterError as exc:
                if self._transport.dropped(_DROP_SETTLE):
                    # The connection dropped again before the agent answered: that says
                    # nothing of the agent, which waits out the session's grace. Have it
                    # reconnected and re-attach again (the session's give-up timer, its
                    # grace, bounds the tries); ending the session here would kill a
                    # healthy agent and lose what ran.
                    context.reconnect_failed(exc)
                    context.connection_lost(f"the connection dropped during a re-attach: {exc}")
                    raise
                self._end_session(session, f"its session could not be resumed ({exc})")
                session = None
        if session is None or session.lost:
            if context.stopping:
                raise AgentStartError(context.host, "the runtime is being stopped")
            resumed = "new: a new agent (what ran before was lost)" if session else "new"
            try:
                session = self._start_session()
            except Exception as exc:
                context.reconnect_failed(exc)
                raise
        context.host_back(resumed)  # before it is published: logged once it is usable
        context.set_agent(AgentClient(session))

    # --- a new agent ----------------------------------------------------------------

    def _start_session(self) -> AgentSession:
        context, options = self._context, self._context.options
        session = AgentSession(
            context.host,
            on_lost=context.agent_lost,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_timeout=options.heartbeat_timeout,
            grace=self._transport.session_grace,
        )
        if options.ship_modules:
            ModuleServer(session, _module_policy(options))
        try:
            hello = session.start(
                self._open_agent(),
                stage_two().wire_bytes(),
                options.agent_start_timeout,
                sources=source_stage,
            )
            self._setup(AgentClient(session))
        except BaseException:
            session.close("agent start failed")
            raise
        context.session = session
        self._log.info("agent.started", pid=hello.get("pid"), python=hello.get("python"))
        return session

    def _open_agent(self) -> ByteStream:
        return self._transport.open_agent()

    def _setup(self, client: AgentClient) -> None:
        """Create (or take over) the working directory; tell the agent the session's
        grace and the client's heartbeat timeout."""
        context, options = self._context, self._context.options
        timeout = options.agent_start_timeout
        working_dir = context.working_dir
        try:
            if working_dir is None:
                working_dir = client.mkdtemp(temporary=True).result(timeout)
            setup = client.setup(
                working_dir,
                temporary=context.temporary_working_dir,
                shell=options.shell,
                session={
                    "grace": self._transport.session_grace,
                    "client_timeout": options.heartbeat_timeout,
                },
                modules=_module_settings(options, self._transport.session_grace),
            )
            context.working_dir = setup.result(timeout)
        except RemoteOperationError as exc:
            raise PathCreationError(working_dir or "<temporary>", context.host, exc.reason) from exc

    # --- the same agent again -------------------------------------------------------

    def _reattach(self, session: AgentSession) -> None:
        options = self._context.options
        session.drop_stream("reconnecting")
        stream = self._transport.reattach(str(session.address.get("socket", "")))
        try:
            # A live agent answers as soon as the stub runs (a login shell and a Python
            # start: well under the limit); one that does not is hung (or stopped).
            limit = min(
                options.agent_start_timeout, max(_REATTACH_TIMEOUT, options.heartbeat_timeout)
            )
            session.reattach(stream, limit)
        except BaseException:
            stream.abort()
            raise
        self._context.reattaches += 1
        self._log.info("agent.reattached", pid=session.hello.get("pid"))

    def _end_session(self, session: AgentSession, reason: str) -> None:
        """Give up on a session: kill its agent if it still lives (hung, say: its
        watchdog then kills what it started, and leaves the working directory to the
        next agent), fail its pending requests."""
        self._log.info("agent.session_lost", reason=reason)
        self._kill_agent(session, graceful=False)
        session.give_up(AgentLostError(self._context.host, reason, AgentLostError.ENDED))

    def _kill_agent(self, session: AgentSession, *, graceful: bool) -> None:
        kill_agent(self._context, session, graceful=graceful)

    # --- losing it ------------------------------------------------------------------

    def _report_lost(self, error: AgentLostError) -> None:
        try:
            self.actor_ref.tell(_AgentLost(error=error))
        except pykka.ActorDeadError:
            return  # stopping anyway

    def on_receive(self, message: Any) -> Any:
        """Dispatch: a lost stream crashes the actor so its supervisor restarts it."""
        match message:
            case _AgentLost(error=error):
                raise error
            case _:
                return super().on_receive(message)

    def on_exit(self, error: BaseException | None) -> None:
        """Unpublish; when the runtime is being stopped, end the session on the host
        (an agent that does not answer is woken and told to clean up, or killed)."""
        context = self._context
        context.set_agent(None)
        context.set_agent_actor(None)
        if context.stopping:
            close_session(context)


def _module_policy(options: RuntimeOptions) -> ModulePolicy:
    """What the runtime's host may be sent of the client's modules."""
    return ModulePolicy(
        enabled=options.ship_modules,
        exclude=options.ship_modules_exclude,
        max_size=options.ship_modules_max_size,
        prefer_client=options.ship_modules_prefer_client,
    )


def _module_settings(options: RuntimeOptions, grace: float) -> dict[str, object]:
    """SETUP's ``modules``: whether the agent asks for modules, and how long an import
    waits for the answer (a reconnect may be under way meanwhile: the agent outlives a
    lost stream for ``grace`` seconds)."""
    return {
        "enabled": options.ship_modules,
        "prefer_client": options.ship_modules_prefer_client,
        "timeout": options.heartbeat_timeout + grace + _MODULE_ANSWER_MARGIN,
    }


def close_session(context: RuntimeContext) -> None:
    """End the runtime's agent session on the host now (the runtime is being stopped):
    it kills what it started and removes its temporary folders; an agent that does not
    answer (hung, stopped, or its stream lost) is woken and told to, or killed."""
    session = context.session
    if session is None or session.lost:
        return
    if not session.alive:
        kill_agent(context, session, graceful=True)
    # A stopped or deadlocked agent may still count as alive (its last heartbeat is
    # recent): one that has not ended its stream soon after CLOSE is woken, told to
    # clean up and killed by pid, so it, its watchdog and its commands go now.
    if not session.close("the runtime was stopped", wait=_CLOSE_ANSWER):
        kill_agent(context, session, graceful=True)


def kill_agent(context: RuntimeContext, session: AgentSession, *, graceful: bool) -> None:
    """End ``session``'s agent by its pid, through the runtime's connection or, if it
    has none now, a new one (bounded; best effort)."""
    pid = session.address.get("pid")
    if not isinstance(pid, int):
        return
    options = context.options
    with contextlib.suppress(ActorClusterError, OSError):
        if options.target is None:
            if graceful:
                os.kill(pid, signal.SIGCONT)  # a stopped agent handles SIGTERM once woken
            os.kill(pid, signal.SIGTERM if graceful else signal.SIGKILL)
            return
        connection = context.connection
        if connection is not None and connection.is_active():
            connection.run(kill_command(pid, graceful=graceful), _KILL_TIMEOUT)
            return
        with connect(options.target) as fresh:
            fresh.run(kill_command(pid, graceful=graceful), _KILL_TIMEOUT)
