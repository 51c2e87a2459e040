"""What the web view's buttons do: cancel a task, restart or stop a supervised
process. Each finds its target itself (by task id, or host and process name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorcluster.actors.process_tree import ProcessSupervisor, sync_processes
from actorcluster.errors import UsageError
from actorcluster.observe.hooks import task_future
from actorcluster.supervisors import Supervisor, root_supervisor, supervisor_proxy

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pykka

__all__ = ["cancel_task", "restart_process", "stop_process"]

_ASK_TIMEOUT = 30.0


def cancel_task(task_id: int) -> bool:
    """Cancel the task with this id; False if it is done already.

    Raises:
        UsageError: no task with this id is known (submitted while nobody listened,
            or long gone).
    """
    future = task_future(task_id)
    if future is None:
        raise UsageError(f"no task {task_id} is known to the observer")
    return bool(future.cancel())


def restart_process(host: str, name: str, root: pykka.ActorRef[Any] | None = None) -> None:
    """Stop the supervised process ``name`` on ``host`` and start it again at once
    (its process group is killed on the host first).

    Raises:
        UsageError: no supervised process of that name runs on that host.
    """
    supervisor, child_id = _find(host, name, root)
    proxy = supervisor_proxy(supervisor.actor_ref)
    proxy.terminate_child(child_id).get(timeout=_ASK_TIMEOUT)
    proxy.restart_child(child_id).get(timeout=_ASK_TIMEOUT)


def stop_process(host: str, name: str, root: pykka.ActorRef[Any] | None = None) -> None:
    """Stop supervising the process ``name`` on ``host``; its process group is killed.

    Raises:
        UsageError: no supervised process of that name runs on that host.
    """
    supervisor, child_id = _find(host, name, root)
    sync_processes(supervisor.registry.discard(child_id, supervisor.entry))


def _find(host: str, name: str, root: pykka.ActorRef[Any] | None) -> tuple[ProcessSupervisor, str]:
    """The process's own supervisor and its child's id."""
    for actor in _supervisors(root if root is not None else root_supervisor()):
        if not isinstance(actor, ProcessSupervisor):
            continue
        entry = actor.entry
        if (entry.state.host, entry.state.name) == (host, name):
            return actor, entry.id
    raise UsageError(f"no supervised process {name!r} runs on {host}")


def _supervisors(ref: pykka.ActorRef[Any], depth: int = 0) -> Iterator[Supervisor]:
    actor = ref._actor_weakref()
    if not isinstance(actor, Supervisor) or depth > 32:
        return
    yield actor
    try:
        children = actor.which_children()
    except RuntimeError:  # its table changed while read
        return
    for child in children:
        if child.ref is not None:
            yield from _supervisors(child.ref, depth + 1)
