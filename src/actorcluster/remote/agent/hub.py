"""The agent's shared state: the frame writer, live requests, started processes, cleanup.

Stdlib only (see the package docstring). Every frame leaves through :meth:`Hub.send`,
:meth:`Hub.emit` or :meth:`Hub.finish`, which serialise writes on one lock. A request is
*live* from :meth:`Hub.open` until its final reply: :meth:`Hub.finish` sends that reply
only if the request is still live, and :meth:`Hub.cancel` ends it early with ERROR
"cancelled", so a request answers exactly once whatever races between the two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import typing
from typing import TYPE_CHECKING, Any

from . import frames, partials, strays, watchdog
from .kills import group_alive, terminate_groups

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator, Mapping

    from .links import Links
    from .outbox import Outbox

__all__ = [
    "CANCELLED",
    "EXIT_GRACE",
    "Hub",
    "checked_env",
    "diag",
    "error_payload",
]

Kind = frames.Kind

CANCELLED = "cancelled"
"""The ERROR type of a request ended by CANCEL."""
EXIT_GRACE = 0.5
"""Seconds between SIGTERM and SIGKILL when the agent exits."""
_START_WAIT = 2.0
"""Longest the agent's exit waits for processes being started to be tracked."""

Abort = typing.Callable[[], None]  # typing.: evaluated at run time (Python 3.8)


def diag(message: str) -> None:
    """Write one diagnostic line to the agent's real stderr (never to the frame stream)."""
    stream = sys.__stderr__
    if stream is None:
        return
    try:
        stream.write(f"actorcluster-agent[{os.getpid()}]: {message}\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The ERROR body for ``exc``: its class name, message and (OS errors) errno."""
    payload: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, OSError) and exc.errno is not None:
        payload["errno"] = exc.errno
    return payload


class Hub:
    """The state every request handler shares.

    Args:
        outbox: where frames for the client go (written by the link's writer).
    """

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._live: dict[int, Abort | None] = {}
        self._groups: dict[int, subprocess.Popen[bytes]] = {}
        self._temp_dirs: list[str] = []
        self._cleanups: list[Abort] = []
        self._closing = False
        self._closed = threading.Event()
        self._starting = 0
        self.working_dir = os.getcwd()
        """Absolute working directory: relative paths and commands start here."""
        self.base_env = dict(os.environ)
        """The agent's environment at start plus SETUP's env: the base of every RUN."""
        self.shell: str | None = None
        """SETUP's shell override, else None for the user's login shell."""
        self.links: Links | None = None
        """The session's links (set by the agent once they exist)."""
        self._held: list[int] = []
        self.mark = strays.new_mark()
        """Every RUN's environment carries it (:mod:`strays`): what a command started is
        found at the end even outside its process group."""
        watchdog.note_mark(self.mark)

    # -- writing frames ---------------------------------------------------------------

    def send(self, kind: int, request_id: int, payload: dict[str, Any]) -> None:
        """Send a frame that belongs to no live request (a protocol error's ERROR)."""
        self.outbox.put_data(frames.encode_frame(kind, request_id, payload))

    # -- live requests ----------------------------------------------------------------

    def open(self, request_id: int) -> bool:
        """Make ``request_id`` live; False (and a diagnostic) if it already is."""
        with self._send_lock:
            if request_id in self._live:
                duplicate = True
            else:
                self._live[request_id] = None
                duplicate = False
        if duplicate:
            diag(f"request id {request_id} is already in flight; frame dropped")
        return not duplicate

    def set_abort(self, request_id: int, abort: Abort) -> bool:
        """Set what CANCEL does for ``request_id``; False if it is no longer live."""
        with self._send_lock:
            if request_id not in self._live:
                return False
            self._live[request_id] = abort
            return True

    def is_live(self, request_id: int) -> bool:
        """Whether ``request_id`` has not answered yet (nor been cancelled)."""
        return request_id in self._live

    def emit(self, request_id: int, kind: int, payload: dict[str, Any]) -> bool:
        """Send an intermediate frame (OUTPUT, DATA) of a live request; False if it is not.

        Waits while the client has too much unacknowledged (it is slow, or away): the
        caller (a command's output pump, a download) pauses with it.
        """
        if request_id not in self._live:
            return False
        return self.outbox.put_data(frames.encode_frame(kind, request_id, payload), flow=True)

    def finish(self, request_id: int, kind: int, payload: dict[str, Any]) -> bool:
        """Send the final reply of a live request; False (nothing sent) if it is not."""
        data = frames.encode_frame(kind, request_id, payload)
        with self._send_lock:
            if request_id not in self._live:
                return False
            del self._live[request_id]
            self.outbox.put_data(data)
            return True

    def fail(self, request_id: int, exc: BaseException) -> bool:
        """Finish ``request_id`` with ERROR {type, message} for ``exc``."""
        return self.finish(request_id, Kind.ERROR, error_payload(exc))

    def cancel(self, target: int) -> None:
        """End a live request with ERROR "cancelled", then run its abort hook."""
        payload = {"type": CANCELLED, "message": f"request {target} was cancelled"}
        data = frames.encode_frame(Kind.ERROR, target, payload)
        with self._send_lock:
            if target not in self._live:
                return  # unknown or already answered: ignored
            abort = self._live.pop(target)
            self.outbox.put_data(data)
        if abort is not None:
            try:
                abort()
            except Exception as exc:  # an abort hook must not take the reader down
                diag(f"cancel of request {target} failed: {exc!r}")

    # -- processes, temporary directories, environment --------------------------------

    def track(self, proc: subprocess.Popen[bytes]) -> None:
        """Remember ``proc``'s process group for killing at exit (at once if exiting)."""
        with self._state_lock:
            closing = self._closing
            if not closing:
                self._groups[proc.pid] = proc
        watchdog.note_group_started(proc.pid)
        if closing:
            terminate_groups([proc], 0.0)

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Around starting a process and tracking it: the agent's exit waits for it."""
        with self._state_lock:
            self._starting += 1
        try:
            yield
        finally:
            with self._state_lock:
                self._starting -= 1

    def untrack(self, proc: subprocess.Popen[bytes]) -> None:
        """Forget ``proc``'s group once it is empty (left tracked while members live)."""
        if not group_alive(proc):
            with self._state_lock:
                self._groups.pop(proc.pid, None)
            watchdog.note_group_ended(proc.pid)

    def kill_later(self, proc: subprocess.Popen[bytes], grace: float = 1.0) -> None:
        """Terminate ``proc``'s group from a background thread (SIGTERM, grace, SIGKILL)."""
        threading.Thread(
            target=terminate_groups, args=([proc], grace), name="agent-kill", daemon=True
        ).start()

    def add_temp_dir(self, path: str) -> None:
        """Remove ``path`` (recursively) when the agent exits."""
        with self._state_lock:
            if path not in self._temp_dirs:
                self._temp_dirs.append(path)
        watchdog.note_temp_dir(path)
        partials.note_temp_dir(path)

    def hold_dir(self, path: str, wait: float = 10.0) -> None:
        """Hold ``path`` (an exclusive lock on it) for as long as the agent lives, so
        that no other agent's clean-up removes it; an agent that is ending (a session
        being replaced) may hold it a moment longer: wait up to ``wait`` seconds.

        Raises:
            PermissionError: it is not ours, or others may write to it.
            TimeoutError: another agent still holds it.
        """
        deadline = time.monotonic() + wait
        while True:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                info = os.fstat(fd)
                if info.st_uid != os.getuid() or info.st_mode & 0o077:
                    raise PermissionError(f"{path} is not a private folder of ours")
                while not watchdog.try_lock(fd):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{path} is held by another agent")
                    time.sleep(0.05)
                if _same_folder(path, info):
                    break
            except BaseException:
                os.close(fd)
                raise
            # The clean-up that held it removed it meanwhile: hold a new one there.
            os.close(fd)
            os.makedirs(path, 0o700, exist_ok=True)
        self._held.append(fd)

    def configure_session(self, grace: object, client_timeout: object) -> None:
        """SETUP's session settings: the grace period and the client's silence timeout."""
        links = self.links
        if links is None:
            return
        if isinstance(grace, (int, float)) and not isinstance(grace, bool) and grace >= 0:
            links.grace = float(grace)
            watchdog.note_grace(float(grace))
            partials.note_grace(float(grace))
        number = isinstance(client_timeout, (int, float)) and not isinstance(client_timeout, bool)
        if number and client_timeout > 0:  # type: ignore[operator]
            links.client_timeout = float(client_timeout)  # type: ignore[arg-type]

    def add_cleanup(self, cleanup: Abort) -> None:
        """Run ``cleanup`` when the agent exits, before processes are killed."""
        with self._state_lock:
            self._cleanups.append(cleanup)

    def environment(self, overrides: Mapping[str, Any] | None) -> dict[str, str]:
        """``base_env`` updated with ``overrides`` (a None value unsets the name), and
        the agent's mark (:data:`strays.MARK_VARIABLE`)."""
        env = dict(self.base_env)
        for name, value in checked_env(overrides).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env[strays.MARK_VARIABLE] = self.mark
        return env

    def resolve(self, path: object) -> str:
        """``path`` with ``~`` expanded, made absolute against the working directory."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a string, not {type(path).__name__}")
        return os.path.abspath(os.path.join(self.working_dir, os.path.expanduser(path)))

    # -- exit -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Kill every started process group and remove temporary directories.

        The first call does the work; later ones wait until it is done.
        """
        with self._state_lock:
            first = not self._closing
            self._closing = True
        if not first:
            self._closed.wait()
            return
        deadline = time.monotonic() + _START_WAIT
        while self._starting and time.monotonic() < deadline:
            time.sleep(0.005)  # a process being started is tracked in a moment
        try:
            self._clean_up()
        finally:
            self._closed.set()

    def _clean_up(self) -> None:
        """Run the cleanups, kill the process groups, remove the temporary directories."""
        with self._state_lock:
            cleanups = list(self._cleanups)
            groups = list(self._groups.values())
            temp_dirs = list(self._temp_dirs)
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception as exc:  # keep cleaning up whatever one step does
                diag(f"cleanup failed: {exc!r}")
        terminate_groups(groups, EXIT_GRACE, self.mark)
        if temp_dirs:
            os.chdir("/")
        home = os.path.expanduser("~")
        for path in temp_dirs:
            if os.path.realpath(path) not in ("/", os.path.realpath(home)):
                shutil.rmtree(path, ignore_errors=True)
        partials.forget()  # nothing left for a ledger to tell

    def exit_soon(self) -> None:
        """Shut down and exit the process from a fresh thread (safe in signal handlers)."""
        threading.Thread(target=self.shutdown_and_exit, name="agent-exit", daemon=True).start()

    def shutdown_and_exit(self) -> None:
        """Shut down, then end the process with status 0 without waiting for threads."""
        self.shutdown()
        watchdog.note_clean_exit()
        for stream in (sys.__stderr__, sys.__stdout__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)


def _same_folder(path: str, info: os.stat_result) -> bool:
    """Whether ``path`` is still the folder ``info`` was taken of."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)


def checked_env(env: Mapping[str, Any] | None) -> dict[str, str | None]:
    """``env`` validated as a mapping of str to str (or None to unset)."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise TypeError(f"env must be a dict, not {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            raise TypeError(f"env entries must be str to str, got {name!r}: {value!r}")
    return env
