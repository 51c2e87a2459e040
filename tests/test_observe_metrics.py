"""The Prometheus metrics: the exposition parses with prometheus_client's parser and
its counters match the events."""

from __future__ import annotations

import collections

import pytest

from actorcluster import Runtime, RuntimeTask, TaskExecutionError
from actorcluster.observe import subscribe

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from actorcluster.observe.metrics import TreeMetrics, exposition  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def _samples(registry):
    text = exposition(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_counters_match_the_events():
    metrics = TreeMetrics()
    try:
        with subscribe() as subscription, Runtime("localhost") as runtime:
            for index in range(3):
                runtime.execute_task(RuntimeTask(f"ok{index}").run_command("true"), False)
            with pytest.raises(TaskExecutionError):
                runtime.execute_task(RuntimeTask("bad").run_command("exit 2"), False)
            future = runtime.execute_task(RuntimeTask("cut").run_command("sleep 600"))
            future.cancel()
            future.exception(timeout=20)
            samples = _samples(metrics.registry)
            events = subscription.drain()
    finally:
        metrics.close()
    ends = collections.Counter(e.kind.split(".")[1] for e in events if e.kind in
                               ("task.finished", "task.failed", "task.cancelled"))  # fmt: skip
    assert ends == {"finished": 3, "failed": 1, "cancelled": 1}
    for outcome, count in ends.items():
        key = ("actorcluster_tasks_total", (("host", "localhost"), ("outcome", outcome)))
        assert samples[key] == count
    duration = ("actorcluster_task_duration_seconds_count", (("host", "localhost"),))
    assert samples[duration] == 5
    by_kind = collections.Counter(e.kind for e in events)
    for kind, count in by_kind.items():
        assert samples[("actorcluster_events_total", (("kind", kind),))] == count
    assert samples[("actorcluster_runtimes", (("state", "ready"),))] >= 1


def test_without_metrics_nothing_listens():
    metrics = TreeMetrics()
    metrics.close()
    from actorcluster.observe import BUS

    assert not BUS.active


def test_restarts_are_counted_by_kind_as_the_events_say():
    metrics = TreeMetrics()
    try:
        with subscribe() as subscription, Runtime("localhost") as runtime:
            process = runtime.supervise(
                "echo once; exit 1", max_restarts=2, period=60, backoff=None
            )
            process.join(30)
            samples = _samples(metrics.registry)
            events = subscription.drain()
    finally:
        metrics.close()
    restarted = [e for e in events if e.kind == "process.restarted"]
    assert [e.incarnation for e in restarted] == [2, 3]
    assert samples[("actorcluster_restarts_total", (("kind", "process"),))] == 2
    exits = [e for e in events if e.kind == "process.exited"]
    assert [e.code for e in exits] == [1, 1, 1] and exits[0].last_lines[-1] == "once"
    assert [e.kind for e in events if e.kind.startswith("process.")][-1] == "process.gave_up"
