"""A service embedding the library: its own supervision tree, started and stopped many
times in one process, leaving no thread, socket or actor behind."""

from __future__ import annotations

import os
import threading

import pykka

from actorcluster import Runtime, RuntimeTask
from actorcluster.supervisors import SupervisionTree
from waiting import wait_until


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t is not threading.main_thread()]


def _actors() -> set[str]:
    return {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}


def test_a_services_tree_with_runtimes_stops_without_leftovers(ssh_bed):
    others = _actors()  # the actors of other tests' trees are not this service's

    def none_left() -> bool:
        return _actors() <= others

    # Warm up imports, stage two and the log folder, so what is counted is per cycle.
    with SupervisionTree("warm-up") as tree:
        Runtime("localhost", supervisor=tree.ref).execute_function(lambda: 1)
    wait_until(none_left, what="no actor left")
    threads, fds = len(_our_threads()), _open_fds()
    for cycle in range(3):
        with SupervisionTree(f"service-{cycle}") as tree:
            runtimes = [
                Runtime("localhost", supervisor=tree.ref),
                Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs, supervisor=tree.ref),
            ]
            futures = [
                rt.execute_task(RuntimeTask("work").run_command("sleep 30")) for rt in runtimes
            ]
            assert all(rt.echo("up").strip() == "up" for rt in runtimes)
        # Stopping the tree stopped every runtime: running tasks failed, nothing is left.
        for future in futures:
            assert future is not None
            wait_until(future.done, what="the task's future was resolved")
        wait_until(none_left, what="no actor left")
        wait_until(lambda: len(_our_threads()) <= threads, what=f"threads back ({_our_threads()})")
        wait_until(lambda: _open_fds() <= fds, what="file descriptors back")
