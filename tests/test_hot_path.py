"""The client's work per task, counted (not timed): thread hops, writes, log calls.

A task's cost on the client is mostly hand-offs between threads and objects built per
task; on a loaded machine their time varies tenfold, their number does not. These
budgets fail if a change adds a hop or a write per task.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TYPE_CHECKING, Any

import pykka
import pytest
import structlog

from actorcluster import Runtime, RuntimeTask
from actorcluster._logging import get_logger
from actorcluster.actors import TaskActor
from actorcluster.remote.session import BATCH_BYTES, _batches
from actorcluster.supervisors._pool import ActorPool, PooledActor

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
TASKS = 40


def _one() -> int:
    return 1


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with Runtime("localhost") as rt:
        rt.execute_task(RuntimeTask("warm").run_function(_one), execute_async=False)
        yield rt


@pytest.mark.parametrize("kind", ["command", "function"])
def test_a_one_step_task_reaches_the_actor_pool_once(
    runtime: Runtime, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its request goes out from the submitting thread; only the step's end is a hop."""
    queued: list[str] = []
    schedule = ActorPool.schedule

    def counted(pool: ActorPool, actor: PooledActor) -> None:
        if isinstance(actor, TaskActor):
            queued.append(threading.current_thread().name)
        schedule(pool, actor)

    monkeypatch.setattr(ActorPool, "schedule", counted)
    for i in range(TASKS):
        task = RuntimeTask(f"hop-{i}")
        task.run_command("true") if kind == "command" else task.run_function(_one)
        runtime.execute_task(task, execute_async=False)
    # One hop each (the step's end). Which thread queues it is timing: a step that ends
    # while the submitting thread is still in on_start is queued by that thread.
    assert len(queued) == TASKS


class _Starter(PooledActor):
    start_here = True

    def __init__(self, seen: list[tuple[str, str]], stop_at_start: bool = False) -> None:
        super().__init__()
        self.seen = seen
        self.stop_at_start = stop_at_start

    def on_start(self) -> None:
        self.seen.append(("start", threading.current_thread().name))
        self.actor_ref.tell("told during on_start")
        if self.stop_at_start:
            self.actor_ref.stop(block=False)

    def on_receive(self, message: Any) -> Any:
        self.seen.append((str(message), threading.current_thread().name))
        return message


def test_a_start_here_actor_starts_on_the_starting_thread_and_handles_messages_on_the_pool():
    seen: list[tuple[str, str]] = []
    ref = _Starter.start(seen)
    try:
        assert seen == [("start", threading.current_thread().name)]  # done within start()
        assert ref.ask("asked", timeout=WAIT) == "asked"
        assert [text for text, _ in seen] == ["start", "told during on_start", "asked"]
        assert all(thread.startswith("actorcluster-actor") for _, thread in seen[1:])
    finally:
        ref.stop(timeout=WAIT)


def test_a_start_here_actor_that_stops_in_on_start_ends_and_leaves_the_registry():
    seen: list[tuple[str, str]] = []
    ref = _Starter.start(seen, stop_at_start=True)
    actor = ref._actor_weakref()  # type: ignore[attr-defined]
    if actor is not None:
        assert actor.actor_finished.wait(WAIT)
    assert not ref.is_alive()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("late")


def test_actor_urns_are_unique_and_uuid_shaped():
    refs = [_Starter.start([]) for _ in range(50)]
    try:
        urns = [ref.actor_urn for ref in refs]
        assert len(set(urns)) == len(urns)
        assert all(
            urn.startswith("urn:uuid:") and len(urn) == len("urn:uuid:") + 36 for urn in urns
        )
    finally:
        for ref in refs:
            ref.stop(timeout=WAIT)


def test_queued_frames_go_out_in_order_small_ones_joined_large_ones_alone():
    small = [bytes([i]) * 100 for i in range(10)]
    large = b"L" * (BATCH_BYTES + 1)
    assert list(_batches([small[0]])) == [small[0]]
    out = list(_batches([*small[:5], large, *small[5:]]))
    assert out == [b"".join(small[:5]), large, b"".join(small[5:])]
    many = [b"x" * 1000] * 200  # 200 kB of small frames: a few writes, none too big
    batches = list(_batches(many))
    assert b"".join(batches) == b"".join(many)
    per_batch = BATCH_BYTES // 1000
    assert len(batches) == -(-200 // per_batch)
    assert all(len(batch) <= BATCH_BYTES for batch in batches)


def test_a_dropped_level_builds_no_structlog_logger_and_a_shown_one_does():
    made: list[str] = []

    def factory(*args: Any) -> structlog.PrintLogger:
        made.append("logger")
        return structlog.PrintLogger(io.StringIO())

    log = get_logger("actorcluster.test_hot_path")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=factory,
    )
    try:
        for _ in range(10):
            log.debug("hot.path.event", task="t")
        assert made == []
        log.warning("hot.path.event", task="t")
        assert made == ["logger"]
    finally:
        structlog.reset_defaults()
