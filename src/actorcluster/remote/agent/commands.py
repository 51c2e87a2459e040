"""RUN: a shell command in its own process group, its output streamed back as it comes.

Stdlib only (see the package docstring). The command runs through the user's login shell with
``-c`` (the passwd entry's shell, else ``/bin/sh``; SETUP may name another) in a new
session, so CANCEL and the agent's exit can kill the command with all its children;
CANCEL also kills every descendant that left that session (``setsid``) and every
process carrying the command's own mark (:func:`kills.terminate_run`).
One selector loop in the request's thread reads stdout and stderr; where the kernel
offers a pidfd the same loop learns when the shell exits, so a background child that
keeps the pipes open cannot hold the EXIT back for more than :data:`DRAIN_GRACE`.
"""

from __future__ import annotations

import functools
import os
import pwd
import select
import selectors
import subprocess
import time
from typing import TYPE_CHECKING, Any

from . import frames, kills, strays

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .hub import Hub
    from .inputs import Inputs

__all__ = ["DRAIN_GRACE", "READ_SIZE", "login_shell", "run_command", "shell_argv"]

Kind = frames.Kind

READ_SIZE = 64 * 1024
"""Most bytes read (and sent in one OUTPUT frame) at a time."""
DRAIN_GRACE = 0.2
"""Seconds to keep reading the pipes after the shell exited, for its last output."""
_POLL_INTERVAL = 0.05
"""Seconds between exit checks where no pidfd is available (macOS, old kernels)."""
_NO_SHELLS = ("nologin", "false")


_NO_RC_FLAGS = {"bash": ("--norc",), "zsh": ("-f",)}
"""Flags that stop a shell from re-reading the user's rc files for each command: the
agent itself was started through them, so their exports are already in its
environment, and bash re-reads ~/.bashrc whenever it thinks sshd started it (costing
~130 ms per command with a pyenv or conda set-up)."""


def shell_argv(shell: str, cmd: str) -> list[str]:
    """The argv that runs ``cmd`` through ``shell`` without re-reading rc files."""
    return [shell, *_NO_RC_FLAGS.get(os.path.basename(shell), ()), "-c", cmd]


@functools.lru_cache(maxsize=1)
def login_shell() -> str:
    """The user's login shell from the passwd entry, or ``/bin/sh`` if it is unusable."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        return "/bin/sh"
    usable = shell and os.path.basename(shell) not in _NO_SHELLS and os.access(shell, os.X_OK)
    return shell if usable else "/bin/sh"


def run_command(
    hub: Hub, request_id: int, payload: dict[str, Any], inputs: Inputs | None = None
) -> None:
    """Run RUN {cmd, env, cwd, stream, stdin?}: OUTPUT frames, then EXIT {code}.

    With ``stream`` false the command's output goes to /dev/null and only EXIT comes.
    With ``stdin`` (and ``inputs``, where the reader opened the request's input) the
    command's stdin is a pipe fed by STDIN frames; else it reads an empty stdin.
    Errors before the command starts (bad cwd, missing shell) answer ERROR.
    """
    try:
        _run(hub, request_id, payload, inputs)
    finally:
        if inputs is not None:
            inputs.close(request_id)


def _run(hub: Hub, request_id: int, payload: dict[str, Any], inputs: Inputs | None) -> None:
    cmd = payload.get("cmd")
    if not isinstance(cmd, str):
        raise TypeError(f"RUN needs a string 'cmd', got {type(cmd).__name__}")
    cwd = payload.get("cwd")
    command_input = inputs.get(request_id) if inputs is not None else None
    env = hub.environment(payload.get("env"))
    run_mark = env[strays.RUN_MARK_VARIABLE] = f"{hub.mark}.{request_id}"
    # Plain pipes, read with os.read: no file objects around them (Popen's cost more).
    pipes = [os.pipe(), os.pipe()] if payload.get("stream", True) else []
    try:
        with hub.starting():  # the agent's exit waits until the group is tracked
            proc = subprocess.Popen(
                shell_argv(hub.shell or login_shell(), cmd),
                stdin=subprocess.DEVNULL if command_input is None else subprocess.PIPE,
                stdout=pipes[0][1] if pipes else subprocess.DEVNULL,
                stderr=pipes[1][1] if pipes else subprocess.DEVNULL,
                cwd=hub.working_dir if cwd is None else hub.resolve(cwd),
                env=env,
                start_new_session=True,
            )
            hub.track(proc)
    except BaseException:
        _close(fd for pipe in pipes for fd in pipe)
        raise
    _close(write for _, write in pipes)  # the command's ends: EOF once it (and all) exit
    if command_input is not None and proc.stdin is not None:
        command_input.attach(os.dup(proc.stdin.fileno()))
        proc.stdin.close()
    if not hub.set_abort(request_id, lambda: kills.kill_run_later(proc, run_mark)):
        kills.kill_run_later(proc, run_mark)  # cancelled while starting
    try:
        _pump(hub, request_id, proc, [read for read, _ in pipes])
    finally:
        _close(read for read, _ in pipes)
    code = proc.wait()
    hub.untrack(proc)
    hub.finish(request_id, Kind.EXIT, {"code": code})


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits), or None where there is none."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


def _pump(hub: Hub, request_id: int, proc: subprocess.Popen[bytes], pipes: list[int]) -> None:
    """Send the command's output (``pipes``: its stdout's and stderr's read ends) as it
    arrives until both pipes end or it exited."""
    watched = dict(zip(pipes, (1, 2)))  # fd -> the command's fd it reads
    pidfd = _pidfd(proc.pid)
    if pidfd is not None:
        watched[pidfd] = 0
    poller = _Poller(watched)
    try:
        open_pipes = len(pipes)
        exited_at: float | None = None
        while open_pipes or exited_at is None:
            timeout = _select_timeout(exited_at, pidfd is not None)
            for fd in poller.ready(timeout):
                if watched[fd] == 0:
                    poller.forget(fd)
                    exited_at = time.monotonic()
                    continue
                data = os.read(fd, READ_SIZE)
                if data:
                    hub.emit(request_id, Kind.OUTPUT, {"fd": watched[fd], "data": data})
                else:
                    poller.forget(fd)
                    open_pipes -= 1
            if exited_at is None and pidfd is None and proc.poll() is not None:
                exited_at = time.monotonic()
            if exited_at is not None and time.monotonic() - exited_at >= DRAIN_GRACE:
                break
    finally:
        poller.close()
        if pidfd is not None:
            os.close(pidfd)


class _Poller:
    """``select.poll`` where there is one (a plain call, no objects per event), else a
    selector: which of some file descriptors are readable."""

    def __init__(self, fds: Iterable[int]) -> None:
        poll = getattr(select, "poll", None)
        self._poll = poll() if poll is not None else None
        self._selector = selectors.DefaultSelector() if poll is None else None
        for fd in fds:
            if self._poll is not None:
                self._poll.register(fd, select.POLLIN)
            elif self._selector is not None:
                self._selector.register(fd, selectors.EVENT_READ)

    def ready(self, timeout: float | None) -> list[int]:
        """The readable (or ended) descriptors, waiting up to ``timeout`` seconds."""
        if self._poll is not None:
            wait = None if timeout is None else int(timeout * 1000 + 0.999)  # ms, rounded up
            return [fd for fd, _ in self._poll.poll(wait)]
        assert self._selector is not None
        return [key.fd for key, _ in self._selector.select(timeout)]

    def forget(self, fd: int) -> None:
        """Stop watching ``fd``."""
        if self._poll is not None:
            self._poll.unregister(fd)
        elif self._selector is not None:
            self._selector.unregister(fd)

    def close(self) -> None:
        """Release the selector, if there is one."""
        if self._selector is not None:
            self._selector.close()


def _select_timeout(exited_at: float | None, have_pidfd: bool) -> float | None:
    """How long the pump may block: until the drain grace ends, or a poll interval."""
    if exited_at is not None:
        return max(0.0, exited_at + DRAIN_GRACE - time.monotonic())
    return None if have_pidfd else _POLL_INTERVAL
