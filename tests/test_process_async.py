"""The async forms of supervision (supervise_async, wait_running_async, stop_async),
each cancelled at random points (hypothesis) on a real sshd host: nothing is left
behind, no process on the host, no actor, no registration, no subscription."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster import Runtime
from actorcluster.actors.process import ProcessActor
from actorcluster.actors.process_tree import ProcessSupervisor
from actorcluster.errors import SupervisorGaveUpError
from proctree import matching
from waiting import wait_until

pytestmark = pytest.mark.timeout(240)

CANCELS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_markers = itertools.count(4500)


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    with Runtime("host-3", connection_kwargs=ssh_bed.connection_kwargs) as host:
        yield host


def _process_actors() -> list[pykka.ActorRef]:
    return [
        ref
        for ref in pykka.ActorRegistry.get_all()
        if issubclass(ref.actor_class, (ProcessActor, ProcessSupervisor))
    ]


def _nothing_left(runtime: Runtime, marker: int) -> None:
    wait_until(lambda: not matching(f"sleep\x00{marker}".encode()), 20, "the process gone")
    wait_until(lambda: not _process_actors(), 10, "its actors stopped")
    assert runtime._handle.context.processes.entries() == []
    assert not [key for key in runtime.get_processes(only_alive=True) if "::process::" in key]


@given(delay=st.floats(min_value=0.0, max_value=0.8))
@CANCELS
def test_cancelling_supervise_async_anywhere_leaves_nothing_behind(runtime, delay):
    marker = next(_markers)

    async def main():
        task = asyncio.create_task(runtime.supervise_async(f"exec sleep {marker}"))
        await asyncio.sleep(delay)  # the random point at which it is cancelled
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return None

    process = asyncio.run(main())
    if process is not None:  # it was running before the cancel came
        assert process.pid is not None
        process.stop()
    _nothing_left(runtime, marker)


@given(delay=st.floats(min_value=0.0, max_value=0.3))
@CANCELS
def test_cancelling_stop_async_anywhere_still_stops_the_process(runtime, delay):
    marker = next(_markers)

    async def main():
        process = await runtime.supervise_async(f"exec sleep {marker}")
        task = asyncio.create_task(process.stop_async())
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # or it finished first
            await task
        return process

    process = asyncio.run(main())
    assert process.status == "stopped"
    _nothing_left(runtime, marker)


@given(delay=st.floats(min_value=0.0, max_value=0.3))
@CANCELS
def test_cancelling_wait_running_async_leaves_no_subscription(runtime, delay):
    marker = next(_markers)
    process = runtime.supervise(f"sleep 0.2; exec sleep {marker}")

    async def main():
        task = asyncio.create_task(process.wait_running_async(30))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return None

    ran = asyncio.run(main())
    assert process._state._listeners == []
    assert ran in (True, None)
    assert process.wait_running(20) and process.pid is not None
    process.stop()
    _nothing_left(runtime, marker)


def test_supervise_async_raises_why_a_process_never_ran_and_stops_it(runtime):
    from actorcluster.runtimes.supervised import supervise_async

    async def main():
        await supervise_async(
            runtime._handle, "true", cwd="/no/such/folder", max_restarts=0, timeout=20
        )

    with pytest.raises(SupervisorGaveUpError):
        asyncio.run(main())
    wait_until(lambda: not _process_actors(), 10, "its actors stopped")
    assert runtime._handle.context.processes.entries() == []


def test_forever_keeps_restarting_a_flapping_process(runtime):
    from actorcluster.supervisors import Backoff

    process = runtime.supervise(
        "exit 1", max_restarts=None, backoff=Backoff(initial=0.01, maximum=0.05)
    )
    wait_until(lambda: process.restart_count >= 8, 30, "eight restarts")
    assert process.is_alive() and process.status != "failed"
    process.stop()
    assert process.status == "stopped"
