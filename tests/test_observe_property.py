"""A hypothesis state machine drives tasks (passing, failing, cancelled) and kills of
the agent on the local runtime, and holds the event stream to a model of the
documented sequences (actorcluster.observe.events)."""

from __future__ import annotations

import os
import signal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actorcluster import Runtime, RuntimeTask, TaskCancelledError, TaskExecutionError
from actorcluster.observe import subscribe

pytestmark = pytest.mark.timeout(300)


def _task_kinds(events, task_id):
    return [
        e.kind for e in events if getattr(e, "task_id", None) == task_id and e.kind != "task.output"
    ]


class EventModel(RuleBasedStateMachine):
    """The model: each task's kinds, and the runtime's kinds, as documented."""

    @initialize()
    def connect(self):
        self.subscription = subscribe()
        self.runtime = Runtime("localhost")
        self.events = []
        self.expected_runtime = ["runtime.connecting", "runtime.ready"]
        self._until("runtime.ready")

    def _until(self, kind, match=lambda e: True):
        for event in self.subscription.iter(timeout=30):
            self.events.append(event)
            if event.kind == kind and match(event):
                return event
        raise AssertionError(f"no {kind}; saw {[e.kind for e in self.events[-20:]]}")

    def _submitted(self, name):
        return self._until("task.submitted", lambda e: e.task == name)

    @rule(steps=st.integers(1, 3))
    def a_task_passes(self, steps):
        name = f"ok-{len(self.events)}"
        task = RuntimeTask(name)
        for index in range(steps):
            task.run_command(f"echo {index}")
        self.runtime.execute_task(task, execute_async=False)
        submitted = self._submitted(name)
        self._until("task.finished", lambda e: e.task_id == submitted.task_id)
        assert _task_kinds(self.events, submitted.task_id) == [
            "task.submitted",
            "task.started",
            *["task.step_finished"] * steps,
            "task.finished",
        ]

    @rule(before=st.integers(0, 2))
    def a_task_fails(self, before):
        name = f"fail-{len(self.events)}"
        task = RuntimeTask(name)
        for _ in range(before):
            task.run_command("true")
        task.run_command("exit 3").run_command("echo never")
        with pytest.raises(TaskExecutionError):
            self.runtime.execute_task(task, execute_async=False)
        submitted = self._submitted(name)
        self._until("task.failed", lambda e: e.task_id == submitted.task_id)
        assert _task_kinds(self.events, submitted.task_id) == [
            "task.submitted",
            "task.started",
            *["task.step_finished"] * (before + 1),
            "task.failed",
        ]

    @rule()
    def a_task_is_cancelled(self):
        name = f"cancel-{len(self.events)}"
        future = self.runtime.execute_task(RuntimeTask(name).run_command("echo go; sleep 600"))
        submitted = self._submitted(name)
        self._until("task.output", lambda e: e.task_id == submitted.task_id)
        future.cancel()
        with pytest.raises(TaskCancelledError):
            future.get(timeout=30)
        self._until("task.cancelled", lambda e: e.task_id == submitted.task_id)
        got = _task_kinds(self.events, submitted.task_id)
        assert got in (
            ["task.submitted", "task.started", "task.cancelled"],
            ["task.submitted", "task.started", "task.step_finished", "task.cancelled"],
        )

    @rule()
    def the_agent_is_killed(self):
        pid = self.runtime._handle.context.session.hello["pid"]
        os.kill(pid, signal.SIGKILL)
        start = len(self.events)
        self._until("runtime.ready")
        got = [e.kind for e in self.events[start:] if e.kind.startswith("runtime.")]
        assert got[0] == "runtime.lost" and got[-1] == "runtime.ready"
        assert set(got[1:-1]) <= {"runtime.connecting"}
        self.expected_runtime += got

    @invariant()
    def nothing_was_dropped(self):
        if hasattr(self, "subscription"):
            assert self.subscription.dropped == 0

    def teardown(self):
        if not hasattr(self, "runtime"):
            return
        self.runtime.cleanup()
        self._until("runtime.gone")
        self.subscription.close()
        got = [e.kind for e in self.events if e.kind.startswith("runtime.")]
        assert got == [*self.expected_runtime, "runtime.gone"]
        # Every task ended exactly once.
        ids = {e.task_id for e in self.events if e.kind == "task.submitted"}
        ends = [e.task_id for e in self.events if e.kind in _ENDS]
        assert sorted(ends) == sorted(ids)


_ENDS = {"task.finished", "task.failed", "task.cancelled"}

EventModel.TestCase.settings = settings(
    max_examples=6,
    stateful_step_count=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEventModel = EventModel.TestCase
