"""The supervision subtree of one runtime.

::

    RuntimeSupervisor[host]   rest_for_one: a new connection means a new agent and
    ├── TaskSupervisor        new tunnels; tasks (first) live on across reconnects
    ├── ProcessesSupervisor   supervised processes (actors.process_tree); live on too
    ├── ConnectionActor
    ├── AgentActor
    └── TunnelSupervisor      one_for_one, permanent TunnelActor children

The TaskSupervisor's children are temporary TaskActors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorcluster.actors.agent import AgentActor, close_session
from actorcluster.actors.connection import ConnectionActor
from actorcluster.actors.process_tree import ProcessesSupervisor
from actorcluster.actors.tunnel import tunnel_child_spec
from actorcluster.errors import HostUnreachableError
from actorcluster.supervisors import Backoff, ChildSpec, Restart, Strategy, Supervisor

if TYPE_CHECKING:
    import pykka

    from actorcluster.actors.context import RuntimeContext

__all__ = ["RuntimeSupervisor", "TaskSupervisor", "TunnelSupervisor", "runtime_supervisor_spec"]

RECONNECT_BACKOFF = Backoff(initial=0.1, maximum=2.0, multiplier=2.0, jitter=0.1)
"""Waits between reconnect attempts: 0.1 s doubling up to 2 s."""
MAX_RESTARTS = 30
"""Restarts of a runtime's children allowed in ``RESTART_PERIOD`` before it gives up
(about a minute of a host being down, at the backoff's 2 s ceiling)."""
RESTART_PERIOD = 60.0
TUNNEL_BACKOFF = Backoff(initial=0.2, maximum=2.0, multiplier=2.0, jitter=0.1)
"""Waits before a broken tunnel is opened again."""


class _PublishedSupervisor(Supervisor):
    """A supervisor that publishes its ref to its runtime while it runs, so callers
    reach the current one across restarts."""

    crash_log_level = "debug"  # the runtime reports its trouble itself

    def _publish(self, ref: pykka.ActorRef[Any] | None) -> None:
        raise NotImplementedError

    def on_start(self) -> None:
        """Start the children, then publish."""
        super().on_start()
        self._publish(self.actor_ref)

    def on_stop(self) -> None:
        """Unpublish, then stop the children."""
        self._publish(None)
        super().on_stop()

    def on_failure(self, *exc_info: Any) -> None:
        """Unpublish."""
        self._publish(None)
        super().on_failure(*exc_info)


class TaskSupervisor(_PublishedSupervisor):
    """One_for_one supervisor of a runtime's running tasks (temporary children; when
    it stops, their futures fail with a clear error)."""

    def __init__(self, context: RuntimeContext) -> None:
        super().__init__(
            f"tasks:{context.host}", Strategy.ONE_FOR_ONE, max_restarts=1000, period=1.0
        )
        self._context = context

    def _publish(self, ref: pykka.ActorRef[Any] | None) -> None:
        self._context.set_task_supervisor(ref)

    def on_stop(self) -> None:
        """Cancel the running tasks first: their actors are busy until their step ends."""
        self._context.cancel_running_tasks("its runtime stopped")
        super().on_stop()


class TunnelSupervisor(_PublishedSupervisor):
    """One_for_one supervisor of a runtime's port exposures; publishes itself.

    Its children are dynamic (one per exposure, added by the runtime), so a restart of
    this supervisor (a reconnect) would lose them: instead it starts one permanent
    :class:`~actorcluster.actors.tunnel.TunnelActor` per tunnel in the runtime's
    registry of wanted tunnels (:meth:`RuntimeContext.tunnels`).
    """

    def __init__(self, context: RuntimeContext) -> None:
        children = [tunnel_child_spec(context, spec, strict=False) for spec in context.tunnels()]
        super().__init__(
            f"tunnels:{context.host}",
            Strategy.ONE_FOR_ONE,
            children,
            max_restarts=100,
            period=10.0,
            backoff=TUNNEL_BACKOFF,
        )
        self._context = context

    def _publish(self, ref: pykka.ActorRef[Any] | None) -> None:
        self._context.set_tunnel_supervisor(ref)

    def on_start(self) -> None:
        """Start (re-opening every wanted tunnel after a reconnect), then publish."""
        super().on_start()
        self._drop_unwanted()

    def _drop_unwanted(self) -> None:
        """Stop the tunnels stopped by their user while this supervisor was starting."""
        for child in self.which_children():
            if not self._context.has_tunnel(child.id):
                self.terminate_child(child.id)
                self.delete_child(child.id)


class RuntimeSupervisor(Supervisor):
    """The top of one runtime's subtree: rest_for_one over tasks, processes,
    connection, agent and tunnels. Tasks and processes come first so that a reconnect
    does not stop them: a task waiting for the agent gets the new one, a supervised
    process waits for the host and is re-adopted or started again.

    Its children start after its own start returned, so the supervisor above it (the
    root, a group's) never waits on a connect: a hundred runtimes connect at once. The
    first start's outcome goes to :attr:`RuntimeContext.startup`; if it fails the
    subtree just stops (the user gets the error, nothing retries). A later start (a
    restart by the parent after this one gave up) that fails crashes instead, so the
    parent keeps trying at its own pace.
    """

    starts_children_later = True
    crash_log_level = "debug"  # the runtime says when its host goes away and comes back
    give_up_log_level = "info"  # the parent goes on trying

    def __init__(self, context: RuntimeContext) -> None:
        children = [
            ChildSpec(id="tasks", start=lambda: TaskSupervisor.start(context)),
            ChildSpec(
                id="processes",
                start=lambda: ProcessesSupervisor.start(context),
                shutdown_timeout=60.0,
            ),
            ChildSpec(id="connection", start=lambda: ConnectionActor.start(context)),
            ChildSpec(id="agent", start=lambda: AgentActor.start(context)),
            ChildSpec(id="tunnels", start=lambda: TunnelSupervisor.start(context)),
        ]
        super().__init__(
            f"runtime:{context.host}",
            Strategy.REST_FOR_ONE,
            children,
            max_restarts=MAX_RESTARTS,
            period=RESTART_PERIOD,
            backoff=RECONNECT_BACKOFF,
        )
        self._context = context

    def on_stop(self) -> None:
        """The runtime is being stopped (not restarted): its session ends with it, even
        if no agent actor runs now (stopped mid-reconnect)."""
        self._context.stopping = True
        super().on_stop()
        close_session(self._context)

    def on_exit(self, error: BaseException | None) -> None:
        """Stopped (or crashed) before the first start finished: fail its waiters."""
        reason = "it was stopped before it came up" if error is None else repr(error)
        self._context.started(HostUnreachableError(self._context.host, reason))

    def on_children_started(self) -> None:
        """The runtime is up: tell whoever waits for the first start."""
        self._context.started(None)

    def on_children_start_failed(self, error: Exception) -> None:
        """The first start's failure goes to the user; a restart's to the parent."""
        if self._context.started(error):
            self.stop()
            return
        raise error


def runtime_supervisor_spec(context: RuntimeContext, child_id: str) -> ChildSpec:
    """The child spec of a runtime's supervisor, for the root (or a user's) tree.

    Transient: a runtime stopped by its user stays stopped; one that gave up after too
    many reconnects is started again by its parent, which keeps trying at the parent's
    own pace.
    """
    return ChildSpec(
        id=child_id,
        start=lambda: RuntimeSupervisor.start(context),
        restart=Restart.TRANSIENT,
        shutdown_timeout=15.0,
    )
