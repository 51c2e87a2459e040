"""Supervisor: starts children in order, restarts them by OTP's rules, stops them in
reverse order; gives up (and fails to its own parent) past its restart intensity."""

from __future__ import annotations

import collections
import random
import weakref
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger
from actorcluster.errors import SupervisorGaveUpError, UsageError
from actorcluster.messages.supervision import AdoptChild, ChildExited, _RestartDue, _StartChildren
from actorcluster.supervisors._actor import (
    SupervisedActor,
    _Link,
    _links,
    join_actor,
    start_linked,
)
from actorcluster.supervisors._children import Child, ChildTable, PendingRestart
from actorcluster.supervisors._clock import SystemClock
from actorcluster.supervisors._spec import (
    ChildCounts,
    ChildInfo,
    ChildSpec,
    Restart,
    SupervisorStatistics,
    validate_supervisor,
)
from actorcluster.supervisors._window import RestartWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from actorcluster.supervisors._clock import Clock
    from actorcluster.supervisors._spec import Backoff, Strategy

__all__ = ["Supervisor", "start_temporary"]

log = get_logger(__name__)

_by_urn: weakref.WeakValueDictionary[str, Supervisor] = weakref.WeakValueDictionary()
"""Every supervisor by its URN: :func:`start_temporary` hands it children directly."""


class Supervisor(SupervisedActor):
    """An OTP supervisor as a pykka actor.

    Children start in order in ``on_start`` (each start waits for the child's
    ``on_start``; if one fails, those started are stopped and the supervisor's own
    start fails with that exception). When a child exits, its restart type and the
    strategy decide what is restarted; more than ``max_restarts`` restarts within
    ``period`` seconds and the supervisor stops every child and fails to its parent
    with :class:`~actorcluster.errors.SupervisorGaveUpError` (without a parent it just
    stops). Restarts wait out ``backoff`` on a timer, so the supervisor keeps
    answering meanwhile. Children stop in reverse start order, each within its
    ``shutdown_timeout``.

    Use it through :func:`~actorcluster.supervisors.supervisor_proxy` (typed) or ``ref.proxy()``::

        sup = supervisor_proxy(ref)
        worker = sup.start_child(ChildSpec("w", Worker.start)).get(timeout=5)

    Do not ``ask`` the supervisor from a child's ``on_start``: the supervisor is
    waiting for that ``on_start`` to finish (as with OTP's ``start_link``).

    Args:
        name: shown in logs, errors and ``repr``.
        strategy: which children restart together.
        children: started in this order when the supervisor starts.
        max_restarts: restarts allowed within ``period`` (OTP's intensity); None:
            no limit, restart forever (give it a ``backoff``: the delay then grows with
            each restart in a row after a run shorter than ``period``, up to the
            backoff's maximum, and starts over after a run of ``period`` or longer).
        period: seconds of the intensity window.
        backoff: delay between restarts; None restarts at once.
        clock: time source for intensity and backoff; :class:`SystemClock` if None.

    Raises:
        ConfigurationError: naming the invalid argument (at construction).
    """

    def __init__(
        self,
        name: str,
        strategy: Strategy,
        children: Sequence[ChildSpec] = (),
        *,
        max_restarts: int | None = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        validate_supervisor(
            name, strategy, children, max_restarts=max_restarts, period=period, backoff=backoff
        )
        super().__init__()
        self._name = name
        self._strategy = strategy
        self._table = ChildTable(name, children)
        self._window = RestartWindow(max_restarts, period)
        self._backoff = backoff
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng = random.Random()
        self._restarts_total = 0
        self._gave_up = False
        self._adoptions: collections.deque[AdoptChild] = collections.deque()
        """Temporary children started by :func:`start_temporary`, not yet in the table:
        taken in before any message is handled, and before the children are stopped
        (one per task: a message each would cost a turn of the supervisor each)."""
        _by_urn[self.actor_urn] = self

    def __repr__(self) -> str:
        return f"<Supervisor {self._name} {self._strategy.name} children={len(self._table)}>"

    # --- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        """Start the children in order; if one fails, stop the others and fail.

        A subclass whose :attr:`starts_children_later` is True returns at once instead
        and starts them on its first message (OTP's ``handle_continue``), so whoever
        starts it (its parent above all) does not wait for slow children; a failure
        then goes to :meth:`on_children_start_failed`.
        """
        super().on_start()
        if self.starts_children_later:
            self.actor_ref.tell(_StartChildren())
            return
        self._start_children()

    starts_children_later = False
    """Start the children after ``on_start`` returned (see :meth:`on_start`)."""
    crash_log_level = "warning"
    """The level a child's crash (or failed restart) is logged at. A subtree that
    reports its own trouble in words a user reads (a runtime: its host went away, it
    is back) logs its children's crashes at ``debug``."""
    give_up_log_level = "error"
    """The level giving up is logged at."""

    def _start_children(self) -> None:
        for child in self._table.children:
            try:
                self._start_child(child)
            except Exception:
                self._shutdown()
                raise

    def on_children_started(self) -> None:
        """Hook: the children started later (see :meth:`on_start`) all started."""

    def on_children_start_failed(self, error: Exception) -> None:
        """Hook: starting the children later failed (they were stopped). By default the
        supervisor crashes with ``error``, so its parent decides, as it would have if
        the start had failed in ``on_start``."""
        raise error

    def on_stop(self) -> None:
        """Stop every child in reverse start order."""
        self._shutdown()
        super().on_stop()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop every child in reverse start order."""
        self._shutdown()
        super().on_failure(exception_type, exception_value, traceback)

    def _handle_receive(self, message: Any) -> Any:
        self._take_adoptions()  # before anything: a child it names may be among them
        return super()._handle_receive(message)

    def on_receive(self, message: Any) -> Any:
        """Dispatch supervision messages; log unknown ones."""
        match message:
            case ChildExited():
                self._on_child_exited(message)
            case AdoptChild(spec=spec, ref=ref, link=link):
                self._on_adopt(spec, ref, link)
            case _StartChildren():
                try:
                    self._start_children()
                except Exception as exc:
                    self.on_children_start_failed(exc)
                else:
                    self.on_children_started()
            case _RestartDue():
                self._on_restart_due(message)
            case _:
                log.warning(
                    "supervisor.unknown_message",
                    supervisor=self._name,
                    message=type(message).__name__,
                )

    # --- the public API (call through a proxy) -------------------------------------------

    def start_child(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        """Start a new child after the others and return its ref.

        Raises:
            UsageError: a child with this id exists, or the supervisor gave up.
            Exception: whatever the child's start raised (the child is not kept).
        """
        if not isinstance(spec, ChildSpec):
            raise UsageError(f"start_child takes a ChildSpec, got {spec!r}")
        if self._table.find(spec.id) is not None:
            raise UsageError(f"supervisor {self._name} already has a child {spec.id!r}")
        self._check_not_gave_up()
        child = Child(spec)
        ref = self._start_child(child)
        self._table.add(child)
        return ref

    def terminate_child(self, child_id: str) -> None:
        """Stop a child (a temporary one is also forgotten); its spec stays otherwise.

        Raises:
            UsageError: no child has this id.
        """
        child = self._table.get(child_id)
        self._terminate(child)
        if child.temporary:
            self._table.remove(child)

    def restart_child(self, child_id: str) -> pykka.ActorRef[Any]:
        """Start a stopped child again from its spec and return its ref.

        Raises:
            UsageError: no child has this id, or it is running or being restarted.
            Exception: whatever the child's start raised.
        """
        child = self._table.get_stopped(child_id)
        self._check_not_gave_up()
        return self._start_child(child)

    def delete_child(self, child_id: str) -> None:
        """Forget a stopped child's spec.

        Raises:
            UsageError: no child has this id, or it is running or being restarted.
        """
        self._table.remove(self._table.get_stopped(child_id))

    def which_children(self) -> list[ChildInfo]:
        """Every child, in start order (read from another thread, as an observer does:
        also the temporary ones started but not yet taken in, see ``_adoptions``)."""
        infos = [child.info() for child in self._table.children]
        for adopt in tuple(self._adoptions):  # empty when called through a message
            if not adopt.link.exit_handled and adopt.ref.is_alive():
                child = Child(adopt.spec)
                child.ref = adopt.ref
                infos.append(child.info())
        return infos

    def count_children(self) -> ChildCounts:
        """How many children there are, running, supervisors and workers (OTP's)."""
        return self._table.counts(Supervisor)

    def statistics(self) -> SupervisorStatistics:
        """A frozen snapshot: restarts and children."""
        return SupervisorStatistics(
            name=self._name,
            strategy=self._strategy,
            restarts_total=self._restarts_total,
            restarts_in_period=self._window.count(self._clock.monotonic()),
            pending_restarts=len(self._table.pending),
            children=tuple(self.which_children()),
        )

    def _take_adoptions(self) -> None:
        adoptions = self._adoptions
        while adoptions:
            adopt = adoptions.popleft()
            self._on_adopt(adopt.spec, adopt.ref, adopt.link)

    def _on_adopt(self, spec: ChildSpec, ref: pykka.ActorRef[Any], link: _Link) -> None:
        """Keep a temporary child started by :func:`start_temporary`, unless its exit
        was handled already (it came as a stranger's): one that ended since is kept
        until its exit, which is on its way, is handled."""
        if link.exit_handled or self._table.find(spec.id) is not None:
            return  # its exit came before it was known, or a clash
        child = Child(spec)
        child.ref, child.link = ref, link
        self._table.add(child)  # not logged: there is one per task, on the hot path

    # --- exits and restarts --------------------------------------------------------------

    def _on_child_exited(self, message: ChildExited) -> None:
        child = self._table.find(message.child_id)
        if child is None or child.ref is None or child.ref.actor_urn != message.actor_urn:
            link = _links.get(message.actor_urn)
            if link is not None:  # a temporary child to be adopted must not be kept
                link.exit_handled = True
            return  # an incarnation we stopped ourselves, or one already replaced
        child.ref = child.link = None
        reason = message.reason or "normal"
        started = child.started_at
        if started is not None and self._clock.monotonic() - started >= self._window.period:
            child.streak = 0  # it ran for a whole period: the backoff starts over
            child.last_crash = None
        # A temporary child (a task) ending normally is routine: debug, not info.
        level = (
            self._crash_level(child, reason)
            if not message.normal
            else "debug"
            if child.temporary
            else "info"
        )
        self._emit(level, "supervisor.child.exited", child, reason)
        if child.temporary:
            self._table.remove(child)
        elif not (message.normal and child.spec.restart is Restart.TRANSIENT):
            self._restart(child, reason)

    def _crash_level(self, child: Child, reason: str) -> str:
        """The level of a child's crash or failed restart: :attr:`crash_log_level` the
        first time, ``debug`` when it fails again with the same error within its streak
        (a host down for minutes: one warning, not one per attempt; giving up and the
        recovery are logged as ever)."""
        kind = reason.partition("(")[0]  # the error's type: its text may name an attempt
        repeated = child.streak > 0 and child.last_crash == kind
        child.last_crash = kind
        return "debug" if repeated else self.crash_log_level

    def _restart(self, child: Child, reason: str) -> None:
        """Restart what the strategy says; stop the siblings involved (reverse order)."""
        if not self._record_restart(child, reason):
            return
        group = self._table.group(child, self._strategy)
        for sibling in reversed(group):
            if sibling is not child:
                self._terminate(sibling)
                if sibling.temporary:
                    self._table.remove(sibling)
        self._schedule(child, [c for c in group if c in self._table], reason, immediate=True)

    def _record_restart(self, child: Child, reason: str) -> bool:
        """Count a restart towards intensity; past it, give up and return False."""
        if self._window.record(self._clock.monotonic(), child.id):
            self._restarts_total += 1
            return True
        self._give_up(child, reason)
        return False

    def _schedule(
        self, trigger: Child, group: list[Child], reason: str, *, immediate: bool
    ) -> None:
        """Start ``group`` after the backoff: on a timer, at once, or via the inbox."""
        group = self._table.merge_pending(group)
        token = self._table.next_token()
        delay = 0.0
        if self._window.max_restarts is None:
            attempt = trigger.streak
        else:
            attempt = self._window.count(self._clock.monotonic(), trigger.id) - 1
        trigger.streak += 1
        if self._backoff is not None:
            delay = self._backoff.delay(attempt, self._rng.random)
        self._emit("debug", "supervisor.restart.scheduled", trigger, reason, delay=delay)
        self.on_restart_scheduled(trigger.id, attempt, delay)
        handle = self._clock.call_later(delay, self._due(token)) if delay > 0 else None
        self._table.add_pending(token, group, PendingRestart(group, reason, handle))
        if handle is not None:
            return
        if immediate:
            self._on_restart_due(_RestartDue(token=token))
        else:
            self.actor_ref.tell(_RestartDue(token=token))

    def on_restart_scheduled(self, child_id: str, attempt: int, delay: float) -> None:
        """Hook: ``child_id`` (and whoever its strategy restarts with it) starts again
        in ``delay`` seconds; ``attempt`` is the backoff's attempt number (0 first)."""

    def _due(self, token: int) -> Callable[[], None]:
        ref = self.actor_ref

        def tell_due() -> None:
            try:
                ref.tell(_RestartDue(token=token))
            except pykka.ActorDeadError:
                return  # stopped meanwhile: nothing to restart

        return tell_due

    def _on_restart_due(self, message: _RestartDue) -> None:
        if message.token not in self._table.pending:
            return  # cancelled, or merged into another restart
        pending = self._table.pop_pending(message.token)
        for index, child in enumerate(pending.children):
            if child not in self._table or child.ref is not None:
                continue
            try:
                self._start_child(child, restart_reason=pending.reason)
            except Exception as exc:
                reason = repr(exc)
                level = self._crash_level(child, reason)
                self._emit(level, "supervisor.child.start_failed", child, reason)
                if self._record_restart(child, reason):
                    self._schedule(child, pending.children[index:], reason, immediate=False)
                return

    def _give_up(self, child: Child, reason: str) -> None:
        restarts = self._window.max_restarts or 0  # never None here: None never gives up
        error = SupervisorGaveUpError(self._name, child.id, reason, restarts)
        getattr(log, self.give_up_log_level)(
            "supervisor.gave_up",
            supervisor=self._name,
            child=child.id,
            reason=reason,
            restarts=restarts,
        )
        self._gave_up = True
        self._shutdown()
        self._link.exit_error = error
        if self._link.parent is not None:
            raise error  # we are in a tell handler: pykka runs on_failure, the parent sees it
        self.stop()

    # --- starting and stopping children --------------------------------------------------

    def _start_child(self, child: Child, restart_reason: str | None = None) -> pykka.ActorRef[Any]:
        ref, link = start_linked(child.spec.start, parent=self.actor_ref, child_id=child.id)
        child.ref, child.link = ref, link
        child.started_at = self._clock.monotonic()
        if restart_reason is not None:
            child.restart_count += 1
        event = (
            "supervisor.child.started" if restart_reason is None else "supervisor.child.restarted"
        )
        self._emit("debug" if child.temporary else "info", event, child, restart_reason)
        return ref

    def _terminate(self, child: Child) -> None:
        """Stop a child within its shutdown timeout; drop it from any pending restart."""
        self._table.unpend(child)
        ref, child.ref, child.link = child.ref, None, None
        if ref is None:
            return
        timeout = child.spec.shutdown_timeout
        deadline = Deadline(timeout)
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            # Python cannot kill a thread: the child stops whenever its handler returns.
            reason = f"not stopped within {timeout} s"
            self._emit("warning", "supervisor.child.kill_timeout", child, reason)
            return
        join_actor(ref, timeout=deadline.remaining(0.1))

    def _shutdown(self) -> None:
        """Cancel pending restarts; stop every child, last started first."""
        self._take_adoptions()
        self._table.cancel_all()
        for child in reversed(self._table.children):
            self._terminate(child)
        self._table.remove_temporary()

    def _emit(self, level: str, event: str, child: Child, reason: str | None, **extra: Any) -> None:
        """Log a supervision event with the keys supervisor, child, reason, restarts."""
        emit = getattr(log, level)  # the module's lazy logger follows structlog's config
        emit(event, supervisor=self._name, child=child.id, reason=reason,
             restarts=child.restart_count, **extra)  # fmt: skip

    def _check_not_gave_up(self) -> None:
        if self._gave_up:
            raise UsageError(f"supervisor {self._name} gave up and is stopping")

    @classmethod
    def child_spec(
        cls,
        name: str,
        strategy: Strategy,
        children: Sequence[ChildSpec] = (),
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown_timeout: float = 60.0,
        max_restarts: int | None = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> ChildSpec:
        """A :class:`ChildSpec` (id ``name``) that starts this supervisor class as a child.

        Its default ``shutdown_timeout`` is long: a supervisor stops its own children
        first.
        """
        specs = tuple(children)
        return ChildSpec(
            name,
            lambda: cls.start(
                name,
                strategy,
                specs,
                max_restarts=max_restarts,
                period=period,
                backoff=backoff,
                clock=clock,
            ),
            restart,
            shutdown_timeout,
        )


def start_temporary(supervisor: pykka.ActorRef[Supervisor], spec: ChildSpec) -> pykka.ActorRef[Any]:
    """Start a temporary child of ``supervisor`` here, without waiting for anyone.

    The child is started on the calling thread (its ``on_start`` runs on the actor
    pool) and the supervisor is told to adopt it; neither the caller nor the supervisor
    waits for the other, so starting many children (a task each) costs no round trip.
    A failing ``on_start`` reaches the supervisor as the child's exit.

    Raises:
        UsageError: ``spec`` is not temporary.
        pykka.ActorDeadError: the supervisor is not running (the child is stopped).
    """
    if spec.restart is not Restart.TEMPORARY:
        raise UsageError(f"start_temporary needs a temporary child, not {spec.restart.name}")
    ref, link = start_linked(spec.start, parent=supervisor, child_id=spec.id, wait=False)
    adopt = AdoptChild(spec=spec, ref=ref, link=link)
    actor = _by_urn.get(supervisor.actor_urn)
    try:
        if actor is None:
            supervisor.tell(adopt)  # not a Supervisor of this process: as a message
        elif supervisor.is_alive():
            actor._adoptions.append(adopt)
            if not supervisor.is_alive() and _withdraw(actor, adopt):
                raise pykka.ActorDeadError(f"{supervisor} stopped")  # before taking it in
        else:
            raise pykka.ActorDeadError(f"{supervisor} not found")
    except pykka.ActorDeadError:
        ref.stop(block=False)
        raise
    return ref


def _withdraw(actor: Supervisor, adopt: AdoptChild) -> bool:
    """Take ``adopt`` back, unless the supervisor took it in already."""
    try:
        actor._adoptions.remove(adopt)
    except ValueError:
        return False
    return True
