"""A hypothesis state machine drives a real supervisor with random crashes, normal
exits and dynamic children, and checks it against a small pure model of OTP's rules."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actorcluster.errors import SupervisorGaveUpError
from actorcluster.messages.supervision import ChildExited
from actorcluster.supervisors import (
    ManualClock,
    Restart,
    Strategy,
    Supervisor,
    join_actor,
    supervisor_proxy,
)
from supervisor_fakes import (
    WAIT,
    Exit,
    Journal,
    children,
    crash,
    ref_of,
    stop_every_actor,
    worker_spec,
)


class RecordingSupervisor(Supervisor):
    """A parent that remembers every ChildExited it receives."""

    exits: list[ChildExited]
    lock = threading.Lock()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            with self.lock:
                type(self).exits.append(message)
        return super().on_receive(message)


@dataclass
class Modelled:
    """The model of one child."""

    id: str
    restart: Restart
    alive: bool = True
    restart_count: int = 0


class Model:
    """OTP's rules, as plain data: what the supervisor under test should look like."""

    def __init__(self, strategy: Strategy, max_restarts: int, period: float) -> None:
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.period = period
        self.now = 0.0
        self.children: list[Modelled] = []
        self.restarts: list[float] = []
        self.gave_up = False

    def find(self, child_id: str) -> Modelled:
        return next(c for c in self.children if c.id == child_id)

    def exited(self, child: Modelled, *, normal: bool) -> None:
        child.alive = False
        if child.restart is Restart.TEMPORARY:
            self.children.remove(child)
            return
        if normal and child.restart is Restart.TRANSIENT:
            return
        self.restarts = [t for t in self.restarts if t > self.now - self.period] + [self.now]
        if len(self.restarts) > self.max_restarts:
            self.gave_up = True
            return
        index = self.children.index(child)
        group = {
            Strategy.ONE_FOR_ONE: [child],
            Strategy.ONE_FOR_ALL: list(self.children),
            Strategy.REST_FOR_ONE: self.children[index:],
        }[self.strategy]
        for sibling in group:
            if sibling is not child and sibling.restart is Restart.TEMPORARY:
                self.children.remove(sibling)
                continue
            sibling.alive = True
            sibling.restart_count += 1

    def terminated(self, child: Modelled) -> None:
        child.alive = False
        if child.restart is Restart.TEMPORARY:
            self.children.remove(child)


restart_types = st.sampled_from(Restart)


class SupervisorMachine(RuleBasedStateMachine):
    """One supervisor under test, a temporary child of a recording parent."""

    def __init__(self) -> None:
        super().__init__()
        self.journal = Journal()
        self.clock = ManualClock()
        self.names = (f"c{n}" for n in range(1_000))
        self.model: Model | None = None
        self.parent: pykka.ActorRef[Any] | None = None
        self.sut: pykka.ActorRef[Any] | None = None

    @initialize(
        strategy=st.sampled_from(Strategy),
        max_restarts=st.integers(0, 3),
        period=st.sampled_from([2.0, 5.0]),
        initial=st.lists(restart_types, max_size=4),
    )
    def start(
        self, strategy: Strategy, max_restarts: int, period: float, initial: list[Restart]
    ) -> None:
        self.model = Model(strategy, max_restarts, period)
        specs = []
        for restart in initial:
            name = next(self.names)
            specs.append(worker_spec(name, self.journal, restart))
            self.model.children.append(Modelled(name, restart))
        sut = Supervisor.child_spec(
            "sut",
            strategy,
            specs,
            restart=Restart.TEMPORARY,
            max_restarts=max_restarts,
            period=period,
            clock=self.clock,
        )
        RecordingSupervisor.exits = []
        self.parent = RecordingSupervisor.start("parent", Strategy.ONE_FOR_ONE, [sut])
        self.sut = ref_of(self.parent, "sut")

    # --- helpers ---------------------------------------------------------------------

    @property
    def live(self) -> list[str]:
        assert self.model is not None
        return [c.id for c in self.model.children if c.alive]

    @property
    def stopped(self) -> list[str]:
        assert self.model is not None
        return [c.id for c in self.model.children if not c.alive]

    def _end(self, child_id: str, *, normal: bool) -> None:
        assert self.model is not None
        assert self.sut is not None
        ref = ref_of(self.sut, child_id)
        if normal:
            ref.tell(Exit())
        else:
            crash(ref, ValueError(child_id))
        assert join_actor(ref, timeout=WAIT)
        self.model.exited(self.model.find(child_id), normal=normal)

    # --- rules -----------------------------------------------------------------------

    @precondition(lambda self: self.model is not None and not self.model.gave_up and self.live)
    @rule(data=st.data())
    def crash_a_child(self, data: st.DataObject) -> None:
        self._end(data.draw(st.sampled_from(self.live)), normal=False)

    @precondition(lambda self: self.model is not None and not self.model.gave_up and self.live)
    @rule(data=st.data())
    def exit_a_child_normally(self, data: st.DataObject) -> None:
        self._end(data.draw(st.sampled_from(self.live)), normal=True)

    @precondition(lambda self: self.model is not None and not self.model.gave_up)
    @rule(restart=restart_types)
    def start_a_child(self, restart: Restart) -> None:
        assert self.model is not None
        assert self.sut is not None
        name = next(self.names)
        supervisor_proxy(self.sut).start_child(worker_spec(name, self.journal, restart)).get(
            timeout=WAIT
        )
        self.model.children.append(Modelled(name, restart))

    @precondition(
        lambda self: self.model is not None and not self.model.gave_up and self.model.children
    )
    @rule(data=st.data())
    def terminate_a_child(self, data: st.DataObject) -> None:
        assert self.model is not None
        assert self.sut is not None
        child = data.draw(st.sampled_from(self.model.children))
        supervisor_proxy(self.sut).terminate_child(child.id).get(timeout=WAIT)
        self.model.terminated(child)

    @precondition(lambda self: self.model is not None and not self.model.gave_up and self.stopped)
    @rule(data=st.data(), delete=st.booleans())
    def restart_or_delete_a_stopped_child(self, data: st.DataObject, delete: bool) -> None:
        assert self.model is not None
        assert self.sut is not None
        child = self.model.find(data.draw(st.sampled_from(self.stopped)))
        proxy = supervisor_proxy(self.sut)
        if delete:
            proxy.delete_child(child.id).get(timeout=WAIT)
            self.model.children.remove(child)
        else:
            proxy.restart_child(child.id).get(timeout=WAIT)
            child.alive = True

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def let_time_pass(self, seconds: float) -> None:
        assert self.model is not None
        self.clock.advance(seconds)
        self.model.now += seconds

    # --- checks ----------------------------------------------------------------------

    @invariant()
    def the_tree_matches_the_model(self) -> None:
        if self.model is None or self.sut is None or self.parent is None:
            return
        if self.model.gave_up:
            self._check_escalated()
            return
        assert self.sut.is_alive()
        actual = [(c.id, c.alive, c.restart_count) for c in children(self.sut)]
        expected = [(c.id, c.alive, c.restart_count) for c in self.model.children]
        assert actual == expected

    def _check_escalated(self) -> None:
        assert self.sut is not None
        assert self.parent is not None
        assert join_actor(self.sut, timeout=WAIT)
        assert children(self.parent) == []  # the parent handled the exit (sut is temporary)
        with RecordingSupervisor.lock:
            exits = [e for e in RecordingSupervisor.exits if e.child_id == "sut"]
        assert len(exits) == 1
        assert not exits[0].normal
        assert isinstance(exits[0].error, SupervisorGaveUpError)

    def teardown(self) -> None:
        if self.parent is not None:
            self.parent.stop(block=True, timeout=WAIT)
        stop_every_actor()
        assert pykka.ActorRegistry.get_all() == []


SupervisorMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_supervisor_follows_the_model = SupervisorMachine.TestCase
