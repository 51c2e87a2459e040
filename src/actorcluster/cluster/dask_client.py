"""A ``distributed.Client`` that gives back its IO loop thread when it fails.

A synchronous ``distributed.Client`` starts a thread running its event loop (``IO
loop``, with an epoll fd and a self-pipe) before it connects, and stops it only at the
end of a ``close()`` that succeeds. A connect that fails (the scheduler restarting, a
refused port) leaves the thread and its three fds for the life of the process: each
readiness probe of a restarting scheduler, each ``get_client()`` while it is down,
leaked one. A ``close()`` that fails (it times out when the scheduler stopped reading
and the client's stream to it is full, or the machine is too slow for its timeout)
leaves them too. :func:`connect` hands back a client that stops its loop thread when
its start fails, and, when its close fails, aborts its connections to the scheduler
and stops its loop thread before raising (each step bounded; not from ``__del__``:
the garbage collector may run it on a thread holding distributed's loop-runner lock,
which stopping the loop takes, a deadlock; nor from the loop's own thread, nor at
interpreter exit). Whichever way its loop thread ends, the sockets still registered
with the loop are then closed (distributed's reconnect, cancelled as the loop stops,
leaves the socket of the connect it had in flight): nothing is left but the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["connect"]

ABANDON_TIMEOUT = 5.0
"""Seconds a failed close waits for its connections to be aborted, then for its loop
thread to end."""

_client_class: list[type[Client]] = []


def _class() -> type[Client]:
    """The subclass, made once on first use (``distributed`` is imported lazily)."""
    if _client_class:
        return _client_class[0]
    from distributed import Client

    class OwnLoopClient(Client):
        """A Client whose failed start or failed close stops its loop thread."""

        def start(self, **kwargs: Any) -> None:
            try:
                super().start(**kwargs)  # type: ignore[no-untyped-call]
            except BaseException:
                owned = _runs_loop_thread(self)
                self._loop_runner.stop()  # type: ignore[no-untyped-call]
                _close_left_sockets(self, owned)
                raise

        def close(self, *args: Any, **kwargs: Any) -> Any:
            owned = _runs_loop_thread(self)
            try:
                closed = super().close(*args, **kwargs)  # type: ignore[no-untyped-call]
            except BaseException:
                if not self.asynchronous and _may_stop_loop(self):
                    _close_left_sockets(self, owned and _abandon(self))
                raise
            _close_left_sockets(self, owned)
            return closed

        def __del__(self) -> None:
            self._collected = True
            super().__del__()  # type: ignore[no-untyped-call]

    _client_class.append(OwnLoopClient)
    return OwnLoopClient


def connect(address: str, timeout: float, *, set_as_default: bool, security: Any) -> Client:
    """A connected synchronous client of the scheduler at ``address``; on failure, the
    error of ``distributed.Client`` with nothing left running."""
    return _class()(address, timeout=timeout, set_as_default=set_as_default, security=security)


def _may_stop_loop(client: Any) -> bool:
    """Whether this thread may stop the client's loop: not in ``__del__``, not the
    loop's own thread, not at interpreter exit."""
    if getattr(client, "_collected", False) or client._is_finalizing():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return True
    return running is not getattr(client.loop, "asyncio_loop", None)


def _abandon(client: Any) -> bool:
    """After a failed close: abort the client's connections on its loop (no flush, no
    goodbye: the scheduler is gone or not reading), then stop its loop thread; the
    client reads ``closed`` from now on (a later ``close()``, its ``__del__``, does
    nothing). Whether its loop thread ended."""
    aborted = threading.Event()

    def abort() -> None:
        try:
            _abort_comms(client)
        finally:
            aborted.set()

    with contextlib.suppress(RuntimeError):  # the loop is closed already
        client.loop.add_callback(abort)
        aborted.wait(ABANDON_TIMEOUT)
    stopped = False
    with contextlib.suppress(Exception):  # a loop thread that would not end: left as is
        client._loop_runner.stop(timeout=ABANDON_TIMEOUT)
        stopped = True
    client.status = "closed"
    return stopped


def _runs_loop_thread(client: Any) -> bool:
    """Whether the client's loop runner has a loop thread running (its own: a runner
    on a loop another started has none)."""
    return getattr(getattr(client, "_loop_runner", None), "_loop_thread", None) is not None


def _close_left_sockets(client: Any, owned: bool) -> None:
    """Once the loop thread the client ran (``owned``) has been joined: close the
    sockets still registered with its loop. Nothing runs on a stopped loop, so nothing
    else will, and the garbage collector would close them later with a
    ``ResourceWarning``. A runner whose loop another client still uses keeps its
    thread: nothing is touched then."""
    if not owned or _runs_loop_thread(client):
        return
    handlers = getattr(client.loop, "handlers", None)
    if not isinstance(handlers, dict):
        return
    for fileobj, _ in list(handlers.values()):
        if isinstance(fileobj, socket.socket):
            with contextlib.suppress(OSError):
                fileobj.close()
    handlers.clear()


def _abort_comms(client: Any) -> None:
    """On the client's loop: abort its stream to the scheduler and its pooled
    connections."""
    comms = []
    stream = getattr(client, "scheduler_comm", None)
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.abort()
        comms.append(getattr(stream, "comm", None))
    pool = getattr(client, "rpc", None)
    for held in (getattr(pool, "available", {}), getattr(pool, "occupied", {})):
        for pooled in list(held.values()):
            comms += list(pooled)
    for comm in comms:
        if comm is not None:
            _abort_comm(comm)


def _abort_comm(comm: Any) -> None:
    """Close ``comm``'s socket now. A close under way (waiting to flush to a peer that
    does not read: the timeout's cause) has taken the stream off the comm already; the
    comm's finalizer still holds it and closes it."""
    with contextlib.suppress(Exception):
        comm.abort()
    finalizer = getattr(comm, "_finalizer", None)
    if finalizer is not None and finalizer.alive:
        with contextlib.suppress(Exception):
            finalizer()
