"""``Workers``: the one way the client starts threads.

A named pool of daemon threads. Jobs run in the order they were submitted, on at most
``limit`` threads at once; a thread with nothing to do waits ``linger`` seconds for the
next job, then ends, so an idle client holds no worker thread. :meth:`Workers.close`
refuses new jobs, wakes the idle threads and joins them. :meth:`Workers.start` runs a
long job (a stream's reader, a watcher) on a thread of its own and hands back a
:class:`Job` to wait on.

Every "a thread that ends when idle" of the client is one of these (the timer thread,
the execution-log writer, module lookups, tunnel relays, ...); ``tests/test_workers.py``
counts thread starts anywhere else in the client's sources.
"""

from __future__ import annotations

import _thread
import collections
import os
import threading
import weakref
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["THREADS", "Job", "Workers"]

log = get_logger(__name__)

_Task = tuple["Callable[..., object]", tuple[object, ...], "Job | None"]
_POOLS: weakref.WeakSet[Workers] = weakref.WeakSet()


class Job:
    """A job started with :meth:`Workers.start`: whether it ended, and a wait for it."""

    __slots__ = ("_done", "_ident", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        """The name its thread runs under."""
        self._done = threading.Event()
        self._ident: int | None = None

    def __repr__(self) -> str:
        return f"<Job {self.name} {'done' if self._done.is_set() else 'running'}>"

    @property
    def done(self) -> bool:
        """Whether the job returned (or raised)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job ended; False if ``timeout`` seconds passed first."""
        return self._done.wait(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the job ended, at most ``timeout`` seconds (as ``Thread.join``)."""
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        """Whether the job still runs (as ``Thread.is_alive``)."""
        return not self._done.is_set()

    @property
    def ident(self) -> int | None:
        """The ``threading.get_ident()`` of the thread running the job now (None before
        it began and once it ended: the thread then serves other jobs)."""
        return self._ident

    def is_current(self) -> bool:
        """Whether the calling thread is the one running this job (a job must not wait
        for itself: the equivalent of ``thread is threading.current_thread()``)."""
        return self._ident is not None and self._ident == threading.get_ident()


class Workers:
    """A named pool of daemon threads with idle exit and a join on close.

    Args:
        name: the threads' name (``threading`` lists them under it).
        limit: threads at most at once (None: a thread per job waiting for one).
        linger: seconds an idle thread waits for the next job before it ends.
        listed: False starts threads with ``_thread`` rather than ``threading.Thread``:
            no wait until the new thread runs (under load a GIL switch interval, 5 ms,
            per start), but ``threading.enumerate`` does not list them. For tunnel
            relays, which start two per connection.
    """

    def __init__(
        self, name: str, *, limit: int | None = None, linger: float = 30.0, listed: bool = True
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"Workers {name!r}: limit must be at least 1, not {limit}")
        self.name = name
        self._limit = limit
        self._linger = linger
        self._listed = listed
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        """Notified when a job waits."""
        self._ended = threading.Condition(self._lock)
        """Notified when a thread ends (for :meth:`close`)."""
        self._jobs: collections.deque[_Task] = collections.deque()
        self._threads = 0
        self._idle = 0
        self._closed = False
        _POOLS.add(self)

    def __repr__(self) -> str:
        return f"<Workers {self.name} threads={self._threads} idle={self._idle}>"

    @property
    def threads(self) -> int:
        """Threads alive now (busy or idle)."""
        return self._threads

    @property
    def busy(self) -> bool:
        """Whether a job is waiting or running."""
        with self._lock:
            return bool(self._jobs) or self._threads > self._idle

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` soon on one of the pool's threads (an idle one, or a new
        one while under the limit). A job that raises is logged; the thread lives on.

        Raises:
            RuntimeError: the pool was closed.
        """
        self._put((fn, args, None))

    def start(self, fn: Callable[..., object], *args: object, name: str | None = None) -> Job:
        """Run ``fn(*args)`` on a thread for as long as it takes (a reader, a watch);
        the returned :class:`Job` tells when it ended.

        Raises:
            RuntimeError: the pool was closed.
        """
        job = Job(name or self.name)
        self._put((fn, args, job))
        return job

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new jobs, let the queued ones finish, end the idle threads; wait up to
        ``timeout`` seconds for every thread to end (False if some still run)."""
        deadline = Deadline(timeout)
        with self._lock:
            self._closed = True
            self._condition.notify_all()
            while self._threads:
                if deadline.expired():
                    return False
                self._ended.wait(deadline.remaining())
        return True

    def _put(self, task: _Task) -> None:
        with self._condition:
            if self._closed:
                raise RuntimeError(f"Workers {self.name!r} is closed: it takes no new jobs")
            self._jobs.append(task)
            if self._idle > len(self._jobs) - 1:
                self._condition.notify()
                return
            if self._limit is not None and self._threads >= self._limit:
                return
            self._threads += 1
        if self._listed:
            name = task[2].name if task[2] is not None else self.name
            threading.Thread(target=self._run, name=name, daemon=True).start()
        else:
            _thread.start_new_thread(self._run, ())

    def _next(self) -> _Task | None:
        with self._condition:
            if not self._jobs and not self._closed:
                self._idle += 1
                self._condition.wait(self._linger)
                self._idle -= 1
            if self._jobs:
                return self._jobs.popleft()
            self._threads -= 1
            self._ended.notify_all()
            return None

    def _run(self) -> None:
        try:
            while (task := self._next()) is not None:
                self._do(*task)
                del task  # hold nothing of a finished job while idle
        except BaseException:  # SystemExit and the like: the thread ends all the same
            with self._lock:
                self._threads -= 1
                self._ended.notify_all()
            raise

    def _do(self, fn: Callable[..., object], args: tuple[object, ...], job: Job | None) -> None:
        if job is not None:
            job._ident = threading.get_ident()
            if self._listed:
                threading.current_thread().name = job.name
        try:
            fn(*args)
        except Exception as exc:  # one failed job must not end the worker
            log.error("workers.job_failed", workers=self.name, error=repr(exc))
        finally:
            if job is not None:
                job._ident = None
                job._done.set()
                if self._listed:
                    threading.current_thread().name = self.name


THREADS = Workers("actorcluster", linger=2.0)
"""The pool for the client's long or one-off jobs (a watch on a process, a tunnel's
accept loop, a command's output delivery): :meth:`Workers.start` names each."""


def _forget_threads() -> None:
    """A forked child inherits no threads: every pool starts from none."""
    for pool in list(_POOLS):
        pool._lock = threading.Lock()
        pool._condition = threading.Condition(pool._lock)
        pool._ended = threading.Condition(pool._lock)
        pool._threads = pool._idle = 0
        pool._jobs.clear()


os.register_at_fork(after_in_child=_forget_threads)
