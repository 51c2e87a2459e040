"""Doing one thing on many hosts at once: :func:`on_agents`, :func:`on_threads`,
:func:`wait_all`, each giving back :class:`Outcomes` (a value or an error per host).

Nothing here goes one host after another: every host's work is started first, then
the results are collected against one deadline, so a slow or dead host costs its own
time only. A host that fails has an error (naming it) in its own slot; the others'
results stand.

* :func:`on_agents` sends one agent request per host (no thread: the requests run on
  the agents, the answers come back on each session's reader). Hosts whose agent is up
  get theirs first; one reconnecting is waited for within the deadline after that.
* :func:`on_threads` runs a blocking call per host on a thread of its own (opening a
  tunnel, reading facts through the facade), for work that is not one request.
* :func:`wait_all` waits for futures already started (tasks).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pykka

from actorcluster._limits import REQUEST_TIMEOUT, Deadline
from actorcluster._workers import Workers
from actorcluster.errors import (
    ActorClusterError,
    HostUnreachableError,
    RemoteError,
    RequestTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actorcluster.futures import ActorFuture
    from actorcluster.remote import AgentClient, Call
    from actorcluster.runtimes import Runtime

__all__ = ["REQUEST_TIMEOUT", "Outcomes", "on_agents", "on_threads", "wait_all"]

T = TypeVar("T")
R = TypeVar("R")

_MAX_THREADS = 64


@dataclass(frozen=True)
class Outcomes(Generic[T]):
    """What each host gave back: a value, or the error that it failed with."""

    values: dict[str, T] = field(default_factory=dict)
    """The hosts that answered, in the group's order."""
    errors: dict[str, Exception] = field(default_factory=dict)
    """Why each other host did not (every error names its host)."""

    def raise_first(self) -> None:
        """Raise the first host's error, if any host failed."""
        for error in self.errors.values():
            raise error


def on_agents(
    runtimes: Mapping[str, Runtime],
    request: Callable[[AgentClient], Call[T]],
    timeout: float = REQUEST_TIMEOUT,
) -> Outcomes[T]:
    """Send ``request(client)`` to every host's agent at once; collect the answers.

    Hosts whose agent is up get their request first; one reconnecting is waited for
    (within ``timeout``) only after every other request went out.
    """
    deadline = Deadline(timeout)
    calls: dict[str, Call[T]] = {}
    errors: dict[str, Exception] = {}
    later: list[str] = []
    for host, runtime in runtimes.items():
        if runtime.handle.ready:
            _send(host, runtime, request, 0.0, calls, errors)
        else:
            later.append(host)
    for host in later:
        _send(host, runtimes[host], request, deadline.remaining(), calls, errors)
    values: dict[str, T] = {}
    for host, call in calls.items():
        try:
            values[host] = call.result(deadline.remaining())
        except ActorClusterError as error:
            errors[host] = error
    return _ordered(runtimes, values, errors)


def _send(  # noqa: PLR0917 (a private helper of on_agents, called twice)
    host: str,
    runtime: Runtime,
    request: Callable[[AgentClient], Call[T]],
    wait: float,
    calls: dict[str, Call[T]],
    errors: dict[str, Exception],
) -> None:
    try:
        calls[host] = request(runtime.handle.client(wait))
    except ActorClusterError as error:
        errors[host] = error


def on_threads(
    items: Mapping[str, R],
    work: Callable[[R], T],
    timeout: float = REQUEST_TIMEOUT,
    what: str = "the request",
) -> Outcomes[T]:
    """Run ``work(item)`` for every item (a host's runtime, or anything keyed by the host
    it concerns) at once, a thread each; collect the results by key.

    A key still working after ``timeout`` gets a :class:`RequestTimeoutError` (its
    thread finishes on its own: every call it makes has a deadline of its own).
    """
    if not items:
        return Outcomes()
    pool = Workers("actorcluster-group", limit=min(len(items), _MAX_THREADS), linger=0.0)
    started = {key: concurrent.futures.Future[T]() for key in items}
    try:
        for key, item in items.items():
            pool.submit(_settle, started[key], work, item)
        concurrent.futures.wait(started.values(), timeout=timeout)
    finally:
        for future in started.values():
            future.cancel()  # those not started yet; the rest finish on their own
        pool.close(0.0)
    values: dict[str, T] = {}
    errors: dict[str, Exception] = {}
    for host, future in started.items():
        if not future.done():
            errors[host] = RequestTimeoutError(host, what, timeout)
            continue
        error = future.exception()
        if error is None:
            values[host] = future.result()
        elif isinstance(error, Exception):
            errors[host] = _named(host, error)
        else:
            raise error
    return _ordered(items, values, errors)


def _settle(future: concurrent.futures.Future[T], work: Callable[[R], T], item: R) -> None:
    """Run ``work(item)`` into ``future`` (unless it was cancelled before it started)."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(work(item))
    except BaseException as error:  # handed to the caller, who raises what is not ours
        future.set_exception(error)


def wait_all(
    futures: Mapping[str, ActorFuture[Any]], timeout: float | None = None
) -> Outcomes[Any]:
    """Wait for every future (each within what is left of ``timeout``; None: as long as
    they take) and collect how each ended."""
    deadline = Deadline(timeout)
    values: dict[str, Any] = {}
    errors: dict[str, Exception] = {}
    for host, future in futures.items():
        try:
            values[host] = future.get(timeout=deadline.timeout())
        except pykka.Timeout:
            errors[host] = RequestTimeoutError(host, "the task", timeout or 0.0)
        except Exception as error:  # each task's own failure, whatever it is
            errors[host] = error
    return Outcomes(values, errors)


def _named(host: str, error: Exception) -> Exception:
    """``error`` if it is ours (ours name their host), else one of ours that does."""
    if isinstance(error, ActorClusterError):
        return error
    reason = f"{type(error).__name__}: {error}"
    wrapped: ActorClusterError = (
        HostUnreachableError(host, reason)
        if isinstance(error, OSError)
        else RemoteError(f"{host}: {reason}")
    )
    wrapped.__cause__ = error
    return wrapped


def _ordered(
    keys: Mapping[str, object], values: dict[str, T], errors: dict[str, Exception]
) -> Outcomes[T]:
    order = list(keys)
    return Outcomes(
        {host: values[host] for host in order if host in values},
        {host: errors[host] for host in order if host in errors},
    )
