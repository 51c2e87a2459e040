"""What the actors of one runtime share: its options and its current connection and agent.

The actors own the lifecycles (connect, start the agent, restart); this object only
publishes what is current, so the hot path (a task sending a request) reaches the agent
client without a hop through an actor's inbox, and a task that starts while a reconnect
is under way waits for the agent without holding a thread (:meth:`when_agent`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actorcluster._limits import (
    AGENT_START_TIMEOUT,
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT,
    MAX_MODULE_SIZE,
    MAX_RETURN_SIZE,
    RECONNECT_WAIT,
    SESSION_GRACE,
)
from actorcluster._logging import get_logger
from actorcluster._timers import TIMERS
from actorcluster.actors.process_tree import ProcessRegistry
from actorcluster.errors import AgentLostError, HostUnreachableError
from actorcluster.futures import ActorFuture
from actorcluster.observe import hooks as observe
from actorcluster.supervisors import supervisor_proxy

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from actorcluster._timers import TimerHandle
    from actorcluster.remote import AgentClient, AgentSession
    from actorcluster.ssh import SshConnection, SshTarget
    from actorcluster.steps import TaskControl
    from actorcluster.supervisors import SupervisorProxy
    from actorcluster.tunnels.spec import TunnelSpec

__all__ = ["LOCALHOST", "RuntimeContext", "RuntimeOptions"]

log = get_logger(__name__)

LOCALHOST = "localhost"
"""The host name of the runtime that runs its agent as a local subprocess (no sshd)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeOptions:
    """How to reach one host and run its agent."""

    host: str
    """The host as the user named it."""
    target: SshTarget | None
    """Where and how to connect; None for the local runtime."""
    python: str | None = None
    """The interpreter on the host; None: the client's python3.X (on PATH, or a pyenv or
    uv install), else python3."""
    shell: str | None = None
    """The shell commands run through; None: the login shell of the host's user."""
    agent_start_timeout: float = AGENT_START_TIMEOUT
    """Seconds the agent gets to come up after the channel opened."""
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    """Seconds between pings to the agent."""
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    """Seconds of silence after which the host counts as lost."""
    reconnect_wait: float = RECONNECT_WAIT
    """Seconds a new request waits for a reconnect under way before it fails."""
    session_grace: float = SESSION_GRACE
    """Seconds the agent's session (its processes, its working directory) waits for a
    reconnect after its stream is lost; running tasks go on meanwhile and finish after
    the re-attach. The localhost runtime's session ends with its client."""
    working_dir: str | None = None
    """The working directory the user gave; None: a temporary one."""
    ship_modules: bool = True
    """Whether a pure-Python module a function imports and the host lacks is sent from
    the client on demand (see :mod:`actorcluster.remote.modules`)."""
    ship_modules_exclude: tuple[str, ...] = ()
    """Modules never sent to the host (a name excludes its submodules too)."""
    ship_modules_max_size: int = MAX_MODULE_SIZE
    """Bytes of source a module sent to the host may have."""
    ship_modules_prefer_client: bool = False
    """Whether the client's pure-Python copy of a module is used even where the host
    has one of its own (by default the host's wins, and a version difference is logged)."""
    max_return_size: int = MAX_RETURN_SIZE
    """Bytes a function's return value may take once unpickled (see
    :mod:`actorcluster.steps.returns`)."""
    keeper: bool = False
    """Whether the connection is the user's keeper's (``Runtime(host, keeper=True)``):
    channels opened through it, no connect of this process's own."""
    keeper_kwargs: str | None = field(default=None, repr=False)
    """The SSH connection settings as JSON, for the keeper to connect with; None: they
    cannot be sent (a key object), so the connection is direct. Never shown: it may
    hold a password."""

    @property
    def is_local(self) -> bool:
        """Whether this runtime runs its agent as a local subprocess."""
        return self.target is None


class _Waiting:
    """A callback waiting for the agent, with its deadline's timer."""

    __slots__ = ("callback", "timer")

    def __init__(self, callback: Callable[[AgentClient | None, BaseException | None], None]):
        self.callback = callback
        self.timer: TimerHandle | None = None


class RuntimeContext:
    """Shared, thread-safe state of one runtime's actors."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.host = options.host
        self.working_dir: str | None = options.working_dir
        """The working directory on the host (absolute once the agent set it up)."""
        self.temporary_working_dir = options.working_dir is None
        """Whether the working directory is ours to remove."""
        self._condition = threading.Condition()
        self._connection: SshConnection | None = None
        self._connection_lost: Callable[[str], None] | None = None
        self._agent: AgentClient | None = None
        self._task_supervisor: pykka.ActorRef[Any] | None = None
        self._task_supervisor_proxy: SupervisorProxy | None = None
        self._tunnel_supervisor: pykka.ActorRef[Any] | None = None
        self._closed = False
        self._last_error = ""
        self._running: set[TaskControl] = set()
        self._tunnels: dict[str, TunnelSpec] = {}
        self._waiting: list[_Waiting] = []
        self.startup: ActorFuture[None] = ActorFuture()
        """Resolved when the runtime first came up; failed if its first start failed."""
        self.session: AgentSession | None = None
        """The agent session, kept across reconnects (its AgentActor may restart)."""
        self.reattaches = 0
        """How many times the session was taken up again after a reconnect."""
        self.stopping = False
        """Set when the runtime is being stopped (its session ends with it)."""
        self.cleanup_requested = False
        """Set when the user stopped the runtime (``cleanup()``), not its supervisor."""
        self._agent_lost: Callable[[AgentLostError], None] | None = None
        self._down_since: float | None = None
        self._down_reason = ""
        self._attempts = 0
        self.processes = ProcessRegistry()
        """The supervised processes this runtime should run (kept across restarts)."""
        observe.track_runtime(self)

    def __repr__(self) -> str:
        state = "ready" if self.ready else "not ready"
        return f"<RuntimeContext {self.host} {state}>"

    # --- publishing (called by the actors) ------------------------------------------

    def started(self, error: Exception | None) -> bool:
        """Record the first start's outcome; False if one was recorded already."""
        if self.startup.done():
            return False
        if error is None:
            self.startup.set(None)
        else:
            self.startup.fail(error)
        return True

    def set_connection(
        self, connection: SshConnection | None, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Publish the current SSH connection (None while there is none), and what
        :meth:`connection_lost` calls for it (its actor's crash)."""
        with self._condition:
            self._connection = connection
            self._connection_lost = on_lost
            self._condition.notify_all()

    def set_agent_actor(self, on_lost: Callable[[AgentLostError], None] | None) -> None:
        """Publish what :meth:`agent_lost` calls when the agent's stream is lost (the
        current AgentActor's crash), or None."""
        with self._condition:
            self._agent_lost = on_lost

    # --- availability, in words a user reads ------------------------------------------

    @property
    def down_reason(self) -> str:
        """Why the host is away now ("" while it is not)."""
        with self._condition:
            return str(self._down_reason or "unreachable") if self._down_since is not None else ""

    def host_down(self, reason: str) -> None:
        """The host went away: warn once (until it is back)."""
        with self._condition:
            if self._down_since is not None or self.stopping or self._closed:
                return
            self._down_since, self._down_reason, self._attempts = time.monotonic(), reason, 0
        log.warning("runtime.host_lost", host=self.host, reason=reason)
        observe.runtime_state(self, "lost", reason)

    def reconnect_failed(self, error: BaseException) -> None:
        """An attempt to come back failed (logged at debug: there may be many)."""
        with self._condition:
            self._attempts += 1
            attempt = self._attempts
        log.debug("runtime.reconnect_failed", host=self.host, attempt=attempt, error=str(error))

    def host_back(self, session: str) -> None:
        """The runtime is up again: warn once, with how long it was away."""
        with self._condition:
            since, self._down_since = self._down_since, None
            attempts = self._attempts + 1
        observe.runtime_state(self, "ready", session)
        if since is not None:
            seconds = round(time.monotonic() - since, 1)
            log.warning(
                "runtime.host_back",
                host=self.host,
                down_seconds=seconds,
                attempts=attempts,
                session=session,
            )

    def agent_lost(self, error: AgentLostError) -> None:
        """The agent's stream was lost (the session may live on): unpublish the agent,
        then restart the connection (gone, or silent: reconnect from scratch) or just
        the agent."""
        self.host_down(str(error))
        self.set_agent(None, str(error))
        connection = self._connection
        if connection is not None and (
            error.kind == AgentLostError.SILENT or not connection.is_active()
        ):
            self.connection_lost(str(error))
            return
        with self._condition:
            report = self._agent_lost
        if report is not None:
            report(error)

    def connection_lost(self, reason: str) -> None:
        """The current connection is dead or silent: have it reconnected from scratch."""
        with self._condition:
            on_lost, self._connection_lost = self._connection_lost, None
        if on_lost is not None:
            on_lost(reason)

    def set_agent(self, agent: AgentClient | None, error: str = "") -> None:
        """Publish the current agent client (None while there is none)."""
        with self._condition:
            self._agent = agent
            if error:
                self._last_error = error
            self._condition.notify_all()
            waiting = self._take_waiting() if agent is not None else []
        self.processes.host_changed()
        for waiter in waiting:
            waiter.callback(agent, None)

    def set_task_supervisor(self, ref: pykka.ActorRef[Any] | None) -> None:
        """Publish the current task supervisor (a proxy to it: building a pykka proxy
        introspects the actor, too slow to do per task)."""
        proxy = supervisor_proxy(ref) if ref is not None else None
        with self._condition:
            self._task_supervisor, self._task_supervisor_proxy = ref, proxy
            self._condition.notify_all()

    def set_tunnel_supervisor(self, ref: pykka.ActorRef[Any] | None) -> None:
        """Publish the current tunnel supervisor."""
        with self._condition:
            self._tunnel_supervisor = ref
            self._condition.notify_all()

    def task_started(self, control: TaskControl) -> None:
        """A task began running (so stopping the runtime can cancel it)."""
        with self._condition:
            self._running.add(control)

    def task_ended(self, control: TaskControl) -> None:
        """A task ended."""
        with self._condition:
            self._running.discard(control)

    @property
    def running_task_count(self) -> int:
        """How many tasks run now."""
        return len(self._running)

    def cancel_running_tasks(self, reason: str) -> None:
        """Cancel every running task: each step in flight ends at once on the host."""
        with self._condition:
            running = list(self._running)
        for control in running:
            control.cancel(reason)

    def close(self, reason: str = "the runtime was stopped") -> None:
        """Mark the runtime stopped: waiters fail at once from now on."""
        with self._condition:
            self._closed = True
            self._last_error = reason
            self._condition.notify_all()
            waiting = self._take_waiting()
        error = HostUnreachableError(self.host, reason)
        for waiter in waiting:
            waiter.callback(None, error)
        observe.runtime_state(self, "gone", reason)

    # --- the wanted tunnels (kept across reconnects) --------------------------------

    def add_tunnel(self, spec: TunnelSpec) -> bool:
        """Remember a wanted tunnel; False if one with its key is already wanted."""
        with self._condition:
            if spec.key in self._tunnels:
                return False
            self._tunnels[spec.key] = spec
            return True

    def remove_tunnel(self, key: str) -> bool:
        """Forget a tunnel (it is not re-opened any more); False if it was not wanted."""
        with self._condition:
            return self._tunnels.pop(key, None) is not None

    def has_tunnel(self, key: str) -> bool:
        """Whether the tunnel with this key is wanted."""
        with self._condition:
            return key in self._tunnels

    def tunnels(self) -> list[TunnelSpec]:
        """The wanted tunnels, oldest first (a TunnelSupervisor starts one child each)."""
        with self._condition:
            return list(self._tunnels.values())

    # --- reading (called by tasks, tunnels and the runtime handle) ------------------

    @property
    def closed(self) -> bool:
        """Whether the runtime was stopped."""
        return self._closed

    @property
    def connection(self) -> SshConnection | None:
        """The current SSH connection, if any."""
        return self._connection

    @property
    def ready(self) -> bool:
        """Whether an agent is up right now."""
        agent = self._agent
        return agent is not None and agent.alive

    def current_agent(self) -> AgentClient | None:
        """The agent client if one is up now, else None (never waits)."""
        agent = self._agent
        return agent if agent is not None and agent.alive and not self._closed else None

    def agent(self, timeout: float | None = None) -> AgentClient:
        """The current agent client, waiting up to ``timeout`` for a reconnect.

        Raises:
            HostUnreachableError: no agent came within the time, or the runtime stopped.
        """
        wait = self.options.reconnect_wait if timeout is None else timeout
        agent: AgentClient = self._wait_for(lambda: self._agent, wait, "agent")
        return agent

    def when_agent(
        self,
        callback: Callable[[AgentClient | None, BaseException | None], None],
        timeout: float | None = None,
    ) -> None:
        """Call ``callback(client, None)`` once an agent is up (at once, here, if one
        is), or ``callback(None, error)`` when none came within ``timeout`` (default
        :attr:`RuntimeOptions.reconnect_wait`) or the runtime stopped. No thread waits."""
        with self._condition:
            agent, closed = self._agent, self._closed
            if (agent is None or not agent.alive) and not closed:
                waiter = _Waiting(callback)
                self._waiting.append(waiter)
                wait = self.options.reconnect_wait if timeout is None else timeout
                waiter.timer = TIMERS.call_later(wait, lambda: self._expire(waiter, wait))
                return
        if closed:
            callback(None, HostUnreachableError(self.host, self._last_error or "runtime stopped"))
        else:
            callback(agent, None)

    def _expire(self, waiter: _Waiting, wait: float) -> None:
        with self._condition:
            if waiter not in self._waiting:
                return
            self._waiting.remove(waiter)
            why = f"; last error: {self._last_error}" if self._last_error else ""
        error = HostUnreachableError(self.host, f"no agent within {wait:.1f} s (reconnecting){why}")
        waiter.callback(None, error)

    def _take_waiting(self) -> list[_Waiting]:
        """Everyone waiting, their timers cancelled (with the condition held)."""
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if waiter.timer is not None:
                waiter.timer.cancel()
        return waiting

    def task_supervisor(self, timeout: float | None = None) -> SupervisorProxy:
        """A proxy to the current task supervisor, waiting like :meth:`agent`."""
        proxy = self._task_supervisor_proxy
        if proxy is not None and proxy.actor_ref.is_alive() and not self._closed:
            return proxy  # the usual case, once per task: no lock, no wait
        wait = self.options.reconnect_wait if timeout is None else timeout
        self._wait_for(lambda: self._task_supervisor, wait, "task supervisor")
        proxy = self._task_supervisor_proxy
        if proxy is None:
            raise HostUnreachableError(self.host, "the task supervisor is restarting")
        return proxy

    def tunnel_supervisor(self, timeout: float | None = None) -> pykka.ActorRef[Any]:
        """The current tunnel supervisor, waiting like :meth:`agent`."""
        wait = self.options.reconnect_wait if timeout is None else timeout
        ref: pykka.ActorRef[Any] = self._wait_for(
            lambda: self._tunnel_supervisor, wait, "tunnel supervisor"
        )
        return ref

    def _wait_for(self, get: Any, timeout: float, what: str) -> Any:
        with self._condition:
            ok = self._condition.wait_for(lambda: self._closed or _usable(get()), timeout)
            value = get()
            if self._closed:
                raise HostUnreachableError(self.host, self._last_error or "runtime stopped")
            if not ok or value is None:
                why = f"; last error: {self._last_error}" if self._last_error else ""
                raise HostUnreachableError(
                    self.host, f"no {what} within {timeout:.1f} s (reconnecting){why}"
                )
            return value


def _usable(value: Any) -> bool:
    if value is None:
        return False
    alive = getattr(value, "alive", None)
    if isinstance(alive, bool):
        return alive
    is_alive = getattr(value, "is_alive", None)
    return bool(is_alive()) if callable(is_alive) else True
