"""CALL {isolated: true}: the function in a child process of the agent.

The default CALL runs on a thread of the agent (see :mod:`calls` for what that costs:
process-wide environment and working directory, best-effort cancel). An isolated CALL
forks the agent instead: the child has its own environment (the call's ``env`` on top
of the agent's), its own working directory, and a process group of its own; its
stdout and stderr (Python's and the file descriptors' both) come back as OUTPUT
frames; CANCEL kills the child with everything it started (:func:`kills.terminate_run`).
The child inherits the agent's imports (cloudpickle, modules shipped so far), so it
costs a fork, not an interpreter start.

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, cast

from . import calls, commands, frames, kills, strays
from .hub import checked_env

if TYPE_CHECKING:
    import subprocess

    from .hub import Hub

__all__ = ["call_isolated"]

Kind = frames.Kind

_MAX_FD = 4096
"""File descriptors the child closes (all but its own pipes) up to this number."""


class _Child:
    """A forked child, looking enough like a ``subprocess.Popen`` for the agent's
    process bookkeeping (:meth:`Hub.track`, :mod:`kills`, :func:`commands._pump`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        """The exit code, or None while it runs (or while :meth:`wait` waits on it)."""
        if not self._lock.acquire(blocking=False):
            return self.returncode  # wait() is reaping it: as Popen.poll does
        try:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    self.returncode = -9
                    return self.returncode
                if pid:
                    self.returncode = _code(status)
            return self.returncode
        finally:
            self._lock.release()

    def wait(self) -> int:
        """Wait for the child to exit; its exit code (``-signal`` if killed)."""
        with self._lock:
            if self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = _code(status)
                except ChildProcessError:
                    self.returncode = -9
            return self.returncode


def _code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def call_isolated(hub: Hub, request_id: int, payload: dict[str, Any]) -> None:
    """Run CALL {payload, env, cwd, isolated}: OUTPUT frames, then RESULT or RAISED (or
    ERROR if the child ended without an answer: it was killed, or called ``os._exit``)."""
    env = checked_env(payload.get("env"))
    cwd = hub.resolve(payload["cwd"]) if payload.get("cwd") is not None else hub.working_dir
    run_mark = f"{hub.mark}.{request_id}"
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    with hub.starting(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
        if pid == 0:
            fds = (out_w, err_w, res_w)
            _child(hub, payload.get("payload"), env=env, cwd=cwd, run_mark=run_mark, fds=fds)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        with contextlib.suppress(OSError):  # the child did it already, or is gone
            os.setpgid(pid, pid)  # also done by the child: no window without a group
        child = _Child(pid)
        proc = cast("subprocess.Popen[bytes]", child)
        hub.track(proc)
    answer: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(res_r, answer), daemon=True)
    reader.start()
    if not hub.set_abort(request_id, lambda: kills.kill_run_later(proc, run_mark)):
        kills.kill_run_later(proc, run_mark)  # cancelled while starting
    try:
        commands._pump(hub, request_id, proc, [out_r, err_r])
    finally:
        os.close(out_r)
        os.close(err_r)
    code = child.wait()
    reader.join()
    hub.untrack(proc)
    data = b"".join(answer)
    if not data:
        hub.fail(request_id, RuntimeError(f"the isolated function's process ended ({code})"))
        return
    kind, body = pickle.loads(data)  # our own child's answer, over our pipe
    hub.finish(request_id, kind, body)


def _read_all(fd: int, into: list[bytes]) -> None:
    """Read ``fd`` to its end into ``into`` (the child's answer, read as it writes it)."""
    with io.FileIO(fd, "rb") as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                return
            into.append(chunk)


def _child(
    hub: Hub,
    data: object,
    *,
    env: dict[str, str | None],
    cwd: str,
    run_mark: str,
    fds: tuple[int, int, int],
) -> None:
    """In the forked child: become a process group of its own, take the call's env and
    cwd, run the function, write the answer, exit. Never returns."""
    out_w, err_w, res_w = fds
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # never the agent's frame stream
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, res_w)  # the agent's frame stream, sockets, the pipes' copies
        os.closerange(res_w + 1, max(_MAX_FD, res_w + 1))
        sys.stdin = io.StringIO("")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        os.environ[strays.MARK_VARIABLE] = hub.mark
        os.environ[strays.RUN_MARK_VARIABLE] = run_mark
        os.chdir(cwd)
        kind, body = calls._invoke(data)
        sys.stdout.flush()
        sys.stderr.flush()
        answer = pickle.dumps((kind, body))
        view = memoryview(answer)
        while view:
            view = view[os.write(res_w, view) :]
        os._exit(0)
    except BaseException:  # nothing may escape a forked child
        os._exit(70)
