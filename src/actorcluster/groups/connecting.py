"""Connecting a group's hosts: how many must come up (``require``), one host's try
(:func:`connect_once`), the steps of a connect from asyncio.

Every step of :meth:`RuntimeGroup.connect <actorcluster.groups.RuntimeGroup.connect>` is
awaited through :func:`actorcluster._aio.settle`, and the group records each runtime
it starts before starting it, so a cancel at any point stops exactly what exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actorcluster.errors import ActorClusterError, InvalidRuntimeError, UsageError
from actorcluster.runtimes.handle import START_TIMEOUT, RuntimeHandle
from actorcluster.runtimes.options import build_options
from actorcluster.runtimes.paths import needs_expansion

if TYPE_CHECKING:
    import threading
    from collections.abc import Mapping

    import pykka

    from actorcluster.runtimes import Runtime

__all__ = [
    "Require",
    "connect_once",
    "errors_note",
    "finish_start",
    "needed",
    "split_working_dir",
    "start_handle",
]

Require = str | int
"""``"all"``, ``"any"`` or a number of hosts."""


def needed(require: object, count: int) -> int:
    """How many of ``count`` hosts must come up for a group to start.

    Raises:
        UsageError: ``require`` is not ``"all"``, ``"any"`` or a number from 1 to ``count``.
    """
    if require == "all":
        return count
    if require == "any":
        return min(1, count)
    if isinstance(require, int) and not isinstance(require, bool) and 1 <= require <= count:
        return require
    raise UsageError(
        f'require must be "all", "any" or a number of hosts from 1 to {count}, not {require!r}'
    )


def split_working_dir(working_dir: str | None) -> tuple[str | None, str | None]:
    """(what a runtime starts in, what it moves to once up): a ``$VAR`` working dir is
    expanded with the host's environment, so it is entered after the start."""
    if isinstance(working_dir, str) and needs_expansion(working_dir):
        return None, working_dir
    return working_dir, None


def start_handle(
    host: str,
    working_dir: str | None,
    connection_kwargs: Mapping[str, Any],
    supervisor: pykka.ActorRef[Any],
    *,
    keeper: bool = False,
) -> RuntimeHandle:
    """A handle for ``host`` under ``supervisor``, not started yet (``keeper``: through
    the user's connection keeper).

    Raises:
        ConfigurationError: a connection setting is wrong.
    """
    start_in, _ = split_working_dir(working_dir)
    options = build_options(host, start_in, connection_kwargs, keeper=keeper)
    return RuntimeHandle(options, supervisor)


def finish_start(
    handle: RuntimeHandle,
    working_dir: str | None,
    retain_tasks: int | None,
    timeout: float = START_TIMEOUT,
) -> Runtime:
    """The runtime of a handle whose start is done (its working dir entered); one
    still starting is stopped (it took longer than ``timeout``).

    Raises:
        InvalidRuntimeError, PathCreationError: it did not come up (nothing is left).
    """
    from actorcluster.runtimes import Runtime

    if not handle.startup.done():
        handle.stop()
        raise InvalidRuntimeError(handle.host, f"it did not come up within {timeout:g} s")
    handle.wait_started(0)
    move_to = split_working_dir(working_dir)[1]
    return Runtime.from_handle(handle, retain_tasks=retain_tasks, working_dir=move_to)


def connect_once(
    host: str,
    abandon: threading.Event,
    *,
    working_dir: str | None,
    connection_kwargs: Mapping[str, Any],
    supervisor: pykka.ActorRef[Any],
    retain_tasks: int | None,
    timeout: float = START_TIMEOUT,
    keeper: bool = False,
) -> Runtime | None:
    """Connect ``host`` once, under ``supervisor``; None if ``abandon`` was set first
    (the start is stopped: nothing is left).

    Raises:
        InvalidRuntimeError, PathCreationError, ConfigurationError: it did not come up.
    """
    handle = start_handle(host, working_dir, connection_kwargs, supervisor, keeper=keeper)
    startup = handle.start_async()
    startup.add_done_callback(lambda _: abandon.set())
    if not abandon.wait(timeout) or not startup.done():
        handle.stop()
        if abandon.is_set():
            return None
        raise InvalidRuntimeError(host, f"it did not come up within {timeout:g} s")
    return finish_start(handle, working_dir, retain_tasks, timeout)


def errors_note(errors: list[ActorClusterError]) -> ActorClusterError:
    """The first error, with the others named in its notes (Python 3.11+)."""
    first = errors[0]
    if hasattr(first, "add_note"):
        for other in errors[1:]:
            first.add_note(f"also: {other}")
    return first
