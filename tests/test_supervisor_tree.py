"""SupervisionTree and the process-wide root supervisor: start, stop, nothing left."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pykka
import pytest

from actorcluster.errors import UsageError
from actorcluster.supervisors import (
    Backoff,
    RootSupervisor,
    Strategy,
    SupervisionTree,
    Supervisor,
    root_supervisor,
    stop_root_supervisor,
    supervisor_proxy,
)
from supervisor_fakes import (
    WAIT,
    Journal,
    StartFailedError,
    crash,
    end_child,
    ref_of,
    running,
    worker_spec,
)
from threads import leaked_threads

pytestmark = pytest.mark.usefixtures("no_actors_left")


def _tree(journal: Journal) -> SupervisionTree:
    inner = Supervisor.child_spec(
        "inner", Strategy.ONE_FOR_ALL, [worker_spec("x", journal), worker_spec("y", journal)]
    )
    return SupervisionTree(
        "svc", [worker_spec("a", journal), inner], backoff=Backoff(initial=0.01, jitter=0.0)
    )


def test_stopped_tree_leaves_no_thread_and_no_actor() -> None:
    threads_before = set(threading.enumerate())
    journal = Journal()
    tree = _tree(journal)
    tree.start()
    crash(ref_of(tree.ref, "a"))
    journal.wait_count("start", "a", 2)  # restarted after a real-timer backoff
    tree.stop()
    assert pykka.ActorRegistry.get_all() == []
    assert not leaked_threads(threads_before)
    assert journal.names("stop") == ["y", "x", "a"]
    assert tree.failure is None


def test_trees_can_be_created_and_stopped_many_times() -> None:
    threads_before = set(threading.enumerate())
    for _ in range(20):
        journal = Journal()
        with _tree(journal) as tree:
            assert running(tree.ref) == ["a", "inner"]
        assert not tree.is_alive()
        assert pykka.ActorRegistry.get_all() == []
    assert not leaked_threads(threads_before)


def test_tree_start_is_idempotent_and_stop_can_be_repeated() -> None:
    tree = SupervisionTree("svc")
    assert tree.start() is tree.start()
    assert isinstance(tree.ref, pykka.ActorRef)
    assert tree.ref.actor_class is RootSupervisor
    tree.stop()
    tree.stop()
    assert repr(tree) == "<SupervisionTree svc stopped>"


def test_tree_ref_before_start_raises() -> None:
    with pytest.raises(UsageError, match="svc"):
        SupervisionTree("svc").ref  # noqa: B018


def test_tree_whose_child_fails_to_start_raises_and_leaves_nothing() -> None:
    journal = Journal()
    journal.fail_next_starts("b", 1)
    tree = SupervisionTree("svc", [worker_spec("a", journal), worker_spec("b", journal)])
    with pytest.raises(StartFailedError):
        tree.start()
    assert pykka.ActorRegistry.get_all() == []
    assert journal.names("stop") == ["a"]


def test_tree_children_are_added_through_its_proxy() -> None:
    journal = Journal()
    with SupervisionTree("svc") as tree:
        tree.proxy().start_child(worker_spec("w", journal)).get(timeout=WAIT)
        end_child(tree.ref, "w", crash)
        journal.wait_count("start", "w", 2)


def test_root_supervisor_is_started_once_and_anew_after_it_stopped() -> None:
    threads_before = set(threading.enumerate())
    urns = set()
    for _ in range(10):
        root = root_supervisor()
        assert root_supervisor() is root
        assert root.actor_class is RootSupervisor
        supervisor_proxy(root).start_child(worker_spec("w", Journal())).get(timeout=WAIT)
        urns.add(root.actor_urn)
        stop_root_supervisor(timeout=WAIT)
        assert not root.is_alive()
        assert pykka.ActorRegistry.get_all() == []
    assert len(urns) == 10
    assert not leaked_threads(threads_before)


_AT_EXIT = textwrap.dedent(
    """
    import threading
    from actorcluster.supervisors import ChildSpec, SupervisedActor, root_supervisor
    from actorcluster.supervisors import supervisor_proxy

    released = threading.Event()

    class Holder(SupervisedActor):
        def on_stop(self):
            print("holder stopped", flush=True)
            released.set()
            super().on_stop()

    # A non-daemon thread that only ends once the holder stopped: the interpreter
    # joins it at exit, so exit hangs unless the tree is stopped before that join.
    threading.Thread(target=released.wait, daemon=False).start()
    supervisor_proxy(root_supervisor()).start_child(ChildSpec("h", Holder.start)).get(timeout=5)
    print("started", flush=True)
    """
)


def test_root_supervisor_is_stopped_at_interpreter_exit_before_threads_are_joined() -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", _AT_EXIT],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ours = [line for line in done.stdout.splitlines() if line in ("started", "holder stopped")]
    assert ours == ["started", "holder stopped"]
