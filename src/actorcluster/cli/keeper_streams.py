"""Each request of the keeper writes to its own caller's stdout and stderr.

The commands print to ``sys.stdout`` and ``sys.stderr`` as they do in their own process.
In the keeper those are :class:`BoundStream` objects that pass every call to the streams
of the request the calling thread serves: a :class:`Binding` made of the caller's own
descriptors (sent over the socket). A thread started, or a job given to a
:class:`~actorcluster._workers.Workers` pool, while serving a request serves it too (a
command's output thread, a progress bar's refresh; not an actor, which outlives it and
may work for others); any other thread, or one
whose request has ended, writes to the keeper's log. ``os.get_terminal_size`` of 0, 1
and 2 answers with the caller's terminal, so rich and click lay out for it.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import threading
import weakref
from typing import TYPE_CHECKING, Any

from actorcluster._workers import THREADS

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.futures import ActorFuture

__all__ = ["Binding", "BoundStream", "current_binding", "install"]

_local = threading.local()
_installed: list[bool] = []


class _StdinPump:
    """The caller's stdin, read only while its request runs: a pipe fed by a thread that
    waits for input and for the request's end together, so nothing is read (a
    terminal's next line, say) once the request is over."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        read, self._write = os.pipe()
        self._stop_read, self._stop_write = os.pipe()
        self.reader = open(read, "rb", buffering=0)  # noqa: SIM115 - closed in stop()
        self._job = THREADS.start(self._pump, name="keeper-stdin")

    def _pump(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._fd, self._stop_read], [], [])
                if self._stop_read in ready:
                    return
                data = os.read(self._fd, 65536)
                if not data:
                    return
                os.write(self._write, data)
        except OSError:
            return
        finally:
            os.close(self._write)

    def stop(self) -> None:
        os.write(self._stop_write, b"x")
        self._job.join(5.0)
        for fd in (self._stop_read, self._stop_write):
            os.close(fd)
        self.reader.close()


class _Stdin(io.RawIOBase):
    """A request's stdin: the pump's pipe, with the caller's ``isatty``."""

    def __init__(self, binding: Binding) -> None:
        super().__init__()
        self._binding = binding

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._binding.pump().reader.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def fileno(self) -> int:
        return self._binding.pump().reader.fileno()

    def isatty(self) -> bool:
        return os.isatty(self._binding.fds[0])


class Binding:
    """One request's caller: its stdin, stdout and stderr descriptors, terminal size,
    and the futures its threads made (cancelled on Ctrl-C)."""

    def __init__(self, fds: list[int], terminal_sizes: list[list[int] | None]) -> None:
        self.fds = fds
        self.terminal_sizes = terminal_sizes
        self.active = True
        self.lock = threading.Lock()
        self.futures: weakref.WeakSet[ActorFuture[Any]] = weakref.WeakSet()
        self._pump: _StdinPump | None = None
        self.stdout = io.TextIOWrapper(
            open(fds[1], "wb", closefd=False),  # noqa: SIM115 - closed in close()
            line_buffering=True,
            errors="backslashreplace",
        )
        self.stderr = io.TextIOWrapper(
            open(fds[2], "wb", closefd=False),  # noqa: SIM115 - closed in close()
            line_buffering=True,
            errors="backslashreplace",
        )
        self.stdin = io.TextIOWrapper(io.BufferedReader(_Stdin(self)))

    def pump(self) -> _StdinPump:
        """The stdin pump, started on first use (a call that reads no stdin has none)."""
        with self.lock:
            if self._pump is None:
                self._pump = _StdinPump(self.fds[0])
            return self._pump

    def close(self) -> None:
        """The request ended: stop reading stdin, flush, close the descriptors."""
        with self.lock:
            self.active = False
            pump, self._pump = self._pump, None
        if pump is not None:
            pump.stop()
        for stream in (self.stdout, self.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def current_binding() -> Binding | None:
    """The request the calling thread serves (None: the keeper's own work)."""
    binding = getattr(_local, "binding", None) or getattr(
        threading.current_thread(), "_keeper_binding", None
    )
    return binding if binding is not None and binding.active else None


def bind(binding: Binding | None) -> None:
    """The calling thread serves ``binding`` from now on (None: nothing)."""
    _local.binding = binding


def _serving(binding: Binding, fn: Callable[..., object], *args: object) -> None:
    """Run a pool job for the request it was submitted for, then for none."""
    _local.binding = binding
    try:
        fn(*args)
    finally:
        _local.binding = None


class BoundStream:
    """``sys.stdout``, ``sys.stderr`` or ``sys.stdin`` of the keeper: the stream of the
    request the calling thread serves, else the keeper's own."""

    def __init__(self, name: str, default: Any) -> None:
        self._name = name
        self._default = default

    def _target(self) -> Any:
        binding = current_binding()
        return self._default if binding is None else getattr(binding, self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __bool__(self) -> bool:
        return True

    def write(self, text: str) -> int:
        """Write to the request's stream."""
        return int(self._target().write(text))

    def flush(self) -> None:
        """Flush the request's stream."""
        self._target().flush()

    def isatty(self) -> bool:
        """Whether the request's stream is a terminal."""
        return bool(self._target().isatty())

    def fileno(self) -> int:
        """The request's descriptor."""
        return int(self._target().fileno())


def install() -> None:
    """Make ``sys.stdout``, ``sys.stderr`` and ``sys.stdin`` per request, threads
    inherit the request they were started for, and terminal sizes the caller's."""
    import sys

    if _installed:
        return
    _installed.append(True)
    for name in ("stdout", "stderr", "stdin"):
        setattr(sys, name, BoundStream(name, getattr(sys, name)))
    start = threading.Thread.start

    import pykka

    from actorcluster._workers import Workers
    from actorcluster.supervisors._pool import ActorPool

    def start_bound(self: threading.Thread) -> None:
        binding = current_binding()
        owner = getattr(getattr(self, "_target", None), "__self__", None)
        if binding is not None and not isinstance(owner, (pykka.Actor, Workers)):
            self._keeper_binding = binding  # type: ignore[attr-defined]
        start(self)

    threading.Thread.start = start_bound  # type: ignore[method-assign]
    put = Workers._put

    def put_bound(self: Workers, task: Any) -> None:
        """A pool thread serves many requests in turn: a job serves the request it
        was submitted for (not an actor's: it outlives the request)."""
        fn, args, job = task
        binding = current_binding()
        owner = getattr(fn, "__self__", None)
        if binding is not None and not isinstance(owner, (pykka.Actor, ActorPool)):
            task = (_serving, (binding, fn, *args), job)
        put(self, task)

    Workers._put = put_bound  # type: ignore[method-assign]
    terminal_size = os.get_terminal_size

    def bound_terminal_size(fd: int = 1) -> os.terminal_size:
        binding = current_binding()
        if binding is not None and fd in (0, 1, 2):
            size = binding.terminal_sizes[fd] if fd < len(binding.terminal_sizes) else None
            if size is None:
                raise OSError("not a terminal")
            return os.terminal_size(size)
        return terminal_size(fd)

    os.get_terminal_size = bound_terminal_size
