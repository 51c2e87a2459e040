"""CALL: a cloudpickled function run on a thread of the agent, its prints sent back.

Stdlib only (see the package docstring); ``cloudpickle`` is imported on the first CALL (in
production it is the copy shipped with the agent).

Threads, not processes, keep a call cheap, at a price the caller should know:

- the CALL's ``env`` is applied to ``os.environ`` and its ``cwd`` to the process's
  working directory for the duration of the call, *process-wide*: concurrent calls see
  each other's values. Both are put back when the call ends unless something else
  changed them meanwhile.
- output: ``sys.stdout``/``sys.stderr`` are replaced once, at agent start, by streams
  that route each write by thread: a write from a CALL's thread becomes an OUTPUT
  frame of that call (line-buffered), a write from any other thread is dropped
  (stdout) or goes to the agent's real stderr (stderr). Threads the function starts
  are "other threads". Writes to file descriptors 1 and 2 themselves never reach the
  client (fd 1 is /dev/null; fd 2 is the agent's stderr).
- CANCEL is best effort: an exception is raised asynchronously in the call's thread,
  which only takes effect when it runs Python code (not inside a blocking C call).

A CALL with ``isolated`` runs in a forked child instead (:mod:`isolated`): its own
environment and working directory, every output, and a CANCEL that kills.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from . import frames
from .hub import checked_env, diag

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["OutputRouter", "RoutedStream", "call_function"]

Kind = frames.Kind

_FLUSH_SIZE = 8192
"""Buffered output of one stream larger than this is sent even without a newline."""


class _Cancelled(BaseException):
    """Raised asynchronously in the thread of a cancelled CALL."""


class _Route:
    """The buffered output of one CALL."""

    def __init__(self, hub: Hub, request_id: int) -> None:
        self.hub = hub
        self.request_id = request_id
        self.pending: dict[int, list[bytes]] = {1: [], 2: []}
        self.sizes = {1: 0, 2: 0}

    def write(self, fd: int, data: bytes) -> None:
        """Buffer ``data`` for ``fd``; send it at a newline or past the flush size."""
        other = 3 - fd
        if self.sizes[other]:
            self.flush(other)  # keep the order of interleaved stdout/stderr writes
        self.pending[fd].append(data)
        self.sizes[fd] += len(data)
        if b"\n" in data or self.sizes[fd] >= _FLUSH_SIZE:
            self.flush(fd)

    def flush(self, fd: int) -> None:
        """Send what is buffered for ``fd`` as one OUTPUT frame."""
        if self.sizes[fd]:
            data = b"".join(self.pending[fd])
            self.pending[fd].clear()
            self.sizes[fd] = 0
            self.hub.emit(self.request_id, Kind.OUTPUT, {"fd": fd, "data": data})

    def flush_all(self) -> None:
        """Send everything still buffered."""
        self.flush(1)
        self.flush(2)


class OutputRouter:
    """Maps threads running a CALL to that call's output."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._routes: dict[int, _Route] = {}

    def install(self) -> None:
        """Replace ``sys.stdout``/``sys.stderr`` with routed streams, ``sys.stdin`` with ''."""
        sys.stdout = RoutedStream(self, 1)
        sys.stderr = RoutedStream(self, 2)
        sys.stdin = io.StringIO("")  # user code must never read the frame stream

    def bind(self, request_id: int) -> _Route:
        """Route the current thread's output to ``request_id``."""
        route = _Route(self._hub, request_id)
        self._routes[threading.get_ident()] = route
        return route

    def unbind(self) -> None:
        """Stop routing the current thread's output."""
        self._routes.pop(threading.get_ident(), None)

    def write(self, fd: int, data: bytes) -> None:
        """Route ``data`` written to stream ``fd`` by the current thread."""
        route = self._routes.get(threading.get_ident())
        if route is not None:
            route.write(fd, data)
        elif fd == 2 and sys.__stderr__ is not None:
            sys.__stderr__.buffer.write(data)
            sys.__stderr__.flush()

    def flush(self, fd: int) -> None:
        """Send what the current thread buffered for ``fd``."""
        route = self._routes.get(threading.get_ident())
        if route is not None:
            route.flush(fd)


class _RoutedBuffer(io.RawIOBase):
    """The binary side (``sys.stdout.buffer``) of a :class:`RoutedStream`."""

    def __init__(self, router: OutputRouter, fd: int) -> None:
        super().__init__()
        self._router = router
        self._fd = fd

    def writable(self) -> bool:
        """Always writable."""
        return True

    def write(self, data: Any) -> int:
        """Route ``data`` (bytes-like) to the current thread's CALL."""
        chunk = bytes(data)
        self._router.write(self._fd, chunk)
        return len(chunk)


class RoutedStream(io.TextIOBase):
    """A text stream whose writes go to the CALL running on the writing thread."""

    def __init__(self, router: OutputRouter, fd: int) -> None:
        super().__init__()
        self._router = router
        self._fd = fd
        self.buffer = _RoutedBuffer(router, fd)

    @property
    def encoding(self) -> str:  # type: ignore[override]  # io's is a read-only property too
        """Text is sent as UTF-8."""
        return "utf-8"

    def writable(self) -> bool:
        """Always writable."""
        return True

    def isatty(self) -> bool:
        """Never a terminal."""
        return False

    def write(self, text: str) -> int:
        """Route ``text`` to the current thread's CALL."""
        self._router.write(self._fd, text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self) -> None:
        """Send what the current thread buffered."""
        self._router.flush(self._fd)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in thread ``thread_id`` (None clears a pending one); best effort."""
    try:
        import ctypes

        target = ctypes.c_ulong(thread_id)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(target, exc and ctypes.py_object(exc))
    except Exception as error:  # no ctypes, no pythonapi: cancel stays a reply only
        diag(f"cannot interrupt call thread: {error!r}")


class _Interrupter:
    """Interrupts one call's thread, only while the function runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id = threading.get_ident()
        self._running = True
        self._fired = False

    def cancel(self) -> None:
        """Raise :class:`_Cancelled` in the call's thread if it still runs the function."""
        with self._lock:
            if self._running:
                self._fired = True
                _set_async_exc(self._thread_id, _Cancelled)

    def leave(self) -> None:
        """The function is over: no interruption from now on (clears a pending one)."""
        with self._lock:
            self._running = False
            if self._fired:
                _set_async_exc(self._thread_id, None)


def call_function(hub: Hub, router: OutputRouter, request_id: int, payload: dict[str, Any]) -> None:
    """Run CALL {payload, env, cwd, isolated?}: OUTPUT frames, then RESULT or RAISED.
    ``isolated``: in a child process of the agent (:mod:`isolated`)."""
    if payload.get("isolated"):
        from . import isolated  # it imports this module

        isolated.call_isolated(hub, request_id, payload)
        return
    interrupter = _Interrupter()
    if not hub.set_abort(request_id, interrupter.cancel):
        return
    route = router.bind(request_id)
    undo: list[tuple[str, str | None, str | None]] = []
    cwd = None
    outcome: tuple[int, dict[str, Any]] | None = None
    try:
        try:
            undo = _apply_env(payload.get("env"))
            cwd = _enter_cwd(hub, payload.get("cwd"))
            outcome = _invoke(payload.get("payload"))
        finally:
            interrupter.leave()
    except _Cancelled:
        outcome = None  # already answered ERROR cancelled
    finally:
        router.unbind()
        _restore_env(undo)
        _leave_cwd(hub, cwd)
    if outcome is not None:
        route.flush_all()
        hub.finish(request_id, *outcome)


def _cloudpickle() -> Any:
    """The cloudpickle module (imported on first use)."""
    import cloudpickle

    return cloudpickle


def _invoke(data: object) -> tuple[int, dict[str, Any]]:
    """Unpickle ``(function, kwargs)``, call it, and build the reply."""
    pickler = _cloudpickle()
    try:
        function, kwargs = pickler.loads(data)
        value = function(**(kwargs or {}))
    except _Cancelled:
        raise
    except BaseException as exc:  # whatever the function raised goes back to the caller
        return Kind.RAISED, _raised(pickler, exc, skip_frames=1)
    try:
        return Kind.RESULT, {"value": pickler.dumps(value)}
    except Exception as exc:  # an unpicklable return value
        return Kind.RAISED, _raised(pickler, exc, skip_frames=0)


def _raised(pickler: Any, exc: BaseException, skip_frames: int) -> dict[str, Any]:
    """The RAISED body for ``exc``, leaving the agent's own frames out of the traceback."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    try:
        pickled: bytes | None = pickler.dumps(exc)
    except Exception:  # an exception that does not pickle still reports type and text
        pickled = None
    cls = type(exc)
    return {
        "exc": pickled,
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "traceback": "".join(traceback.format_exception(cls, exc, tb)),
    }


def _apply_env(env: Any) -> list[tuple[str, str | None, str | None]]:
    """Apply ``env`` to ``os.environ``; return (name, old, new) for each change."""
    changes = []
    for name, value in checked_env(env).items():
        changes.append((name, os.environ.get(name), value))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return changes


def _restore_env(changes: list[tuple[str, str | None, str | None]]) -> None:
    """Undo :func:`_apply_env` for every name nobody changed since."""
    for name, old, new in reversed(changes):
        if os.environ.get(name) != new:
            continue
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _enter_cwd(hub: Hub, cwd: object) -> str | None:
    """Change the process's directory to the call's ``cwd``, if it has one."""
    if cwd is None:
        return None
    path = hub.resolve(cwd)
    os.chdir(path)
    return path


def _leave_cwd(hub: Hub, cwd: str | None) -> None:
    """Go back to the working directory unless another call moved elsewhere."""
    if cwd is None:
        return
    try:
        if os.getcwd() == cwd:
            os.chdir(hub.working_dir)
    except OSError as exc:
        diag(f"cannot go back to {hub.working_dir!r}: {exc!r}")
