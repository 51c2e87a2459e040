"""SupervisedActor.on_exit: one release hook, run on a stop and on a crash."""

from __future__ import annotations

import queue

import pytest

from actorcluster.supervisors import SupervisedActor, join_actor


class _Holder(SupervisedActor):
    def __init__(self, exits: queue.Queue[object]) -> None:
        super().__init__()
        self._exits = exits

    def on_exit(self, error: BaseException | None) -> None:
        self._exits.put(error)


def test_on_exit_runs_once_with_none_when_the_actor_stops() -> None:
    exits: queue.Queue[object] = queue.Queue()
    ref = _Holder.start(exits)
    ref.stop(block=True, timeout=10)
    assert exits.get(timeout=10) is None
    assert exits.empty()


def test_on_exit_runs_once_with_the_error_when_the_actor_crashes() -> None:
    exits: queue.Queue[object] = queue.Queue()
    ref = _Holder.start(exits)
    ref.proxy().crash(RuntimeError("boom")).get(timeout=10)
    assert join_actor(ref, timeout=10)
    error = exits.get(timeout=10)
    assert isinstance(error, RuntimeError)
    assert str(error) == "boom"
    with pytest.raises(queue.Empty):
        exits.get_nowait()
