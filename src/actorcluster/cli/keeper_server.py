"""The keeper: a per-user process that keeps the command line's runtimes connected.

Started by :func:`actorcluster.keeper.finder.start_keeper` (``python -c ...
keeper_server.main() SOCKET KEY READY_FD``), in a session of its own. It listens on a
Unix socket (0600, in a 0700 folder), answers only processes of its own user (their
credentials checked on every connection, ``SO_PEERCRED``), and serves each call on a
thread of its own: the command line's own code (:func:`actorcluster.cli.app.main`) runs
with the caller's stdin, stdout and stderr (:mod:`~actorcluster.cli.keeper_streams`) and
borrows runtimes from the keeper's pool (:mod:`~actorcluster.cli.keeper_pool`) instead
of connecting. It also lends channels on SSH connections it holds to library runtimes
made with ``Runtime(host, keeper=True)`` (:mod:`~actorcluster.cli.keeper_channels`). A
signal the caller forwards (Ctrl-C), or the caller going away, interrupts the call as
Ctrl-C interrupts a command line: a ``KeyboardInterrupt`` in its thread, and every
future it made cancelled (its remote commands killed).

It exits when it has had nothing to do for ``$ACTORCLUSTER_KEEPER_IDLE`` seconds (300; a
lent channel open counts as something to do), when told to (``actorcluster keeper
stop``), or when its ssh_config changed (a newer keeper serves that one), cleaning every
runtime up. Killed outright, its hosts clean up after themselves once their session
grace is over, as for any client that vanished.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

from actorcluster._logging import get_logger
from actorcluster._workers import THREADS, Job
from actorcluster.cli import keeper_streams as streams
from actorcluster.cli.app import main as run_here
from actorcluster.cli.exits import ExitCode
from actorcluster.cli.keeper_channels import CHANNEL_OPS, HeldConnections
from actorcluster.cli.keeper_pool import Lease, RunHere, RuntimePool
from actorcluster.futures import ActorFuture
from actorcluster.keeper import paths

__all__ = ["Keeper", "main", "serve"]

log = get_logger(__name__)

_INTERRUPT_GRACE = 5.0
"""Seconds an interrupted call may take to end before its runtimes are cleaned up
under it (which ends whatever it still waits for)."""
_READ_TIMEOUT = 10.0
"""Seconds a connection may take to send its request."""
_CHECK_EVERY = 1.0
"""Seconds between looks at the idle time and the ssh_config."""


class _Request:
    """One call being served."""

    def __init__(self, sock: socket.socket, binding: streams.Binding) -> None:
        self.sock = sock
        self.binding = binding
        self.lease = Lease()
        self.done = threading.Event()
        """Set once the call ended (its exit code sent)."""
        self.ident: int | None = None
        """The thread serving the call, once it began (set under the binding's lock)."""
        self.interrupted = False


def _raise_in(ident: int, error: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(error))


def _peer_uid(sock: socket.socket) -> int:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


def _track_futures() -> None:
    """Futures made while serving a call belong to it (Ctrl-C cancels them)."""
    original = ActorFuture.__init__

    def init(self: ActorFuture[Any], what: str = "") -> None:
        original(self, what)
        binding = streams.current_binding()
        if binding is not None:
            binding.futures.add(self)

    ActorFuture.__init__ = init  # type: ignore[method-assign]


class Keeper:
    """The keeper's state: its socket, pool, calls in flight and idle clock."""

    def __init__(self, server: socket.socket, key: str) -> None:
        self.server = server
        self.key = key
        self.pool = RuntimePool()
        self.held = HeldConnections()
        """The SSH connections lent channel by channel to library runtimes."""
        self.started = time.time()
        self.last_used = time.monotonic()
        self.requests: set[_Request] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.served = 0
        self.readers: list[Job] = []
        """The jobs reading (then serving) a connection: the keeper exits after them."""
        self.cwd_lock = threading.Lock()
        self.config = paths.config_file(None)
        self.digest = paths.config_digest(self.config)

    def status(self) -> dict[str, Any]:
        """What ``actorcluster keeper status`` shows."""
        with self.lock:
            busy = len(self.requests)
        return {
            "pid": os.getpid(),
            "key": self.key,
            "ssh_config": self.config,
            "started": self.started,
            "idle_for": round(time.monotonic() - self.last_used, 1) if not busy else 0.0,
            "idle_exit": paths.idle_seconds(),
            "calls_in_flight": busy,
            "calls_served": self.served,
            "hosts": sorted(set(self.pool.hosts()) | set(self.held.hosts())),
            "channels_open": self.held.open_channels(),
        }

    def accept(self, sock: socket.socket) -> None:
        """A connection: check who it is; its request is read and answered on a thread
        of its own."""
        uid = _peer_uid(sock)
        if uid != os.getuid():
            log.warning("keeper.refused", uid=uid)
            sock.close()
            return
        with self.lock:
            self.last_used = time.monotonic()  # not idle while the request is read
            self.readers = [job for job in self.readers if job.is_alive()]
            self.readers.append(THREADS.start(self._answer, sock, name="keeper-read"))

    def _answer(self, sock: socket.socket) -> None:
        sock.settimeout(_READ_TIMEOUT)
        try:
            message, fds, _, _ = socket.recv_fds(sock, 65536, 3)
            while not message.endswith(b"\n") and message:
                more = sock.recv(65536)
                if not more:
                    break
                message += more
            request = json.loads(message)
        except (OSError, ValueError):
            sock.close()
            return
        sock.settimeout(None)
        op = request.get("op")
        serves = op == "run" and len(fds) == 3 and request.get("key") == self.key
        if serves and not self.stopping.is_set():  # stopping: the caller runs it itself
            self._serve_call(sock, fds, request)
            return
        lent = op in CHANNEL_OPS and request.get("key") == self.key
        if lent and not self.stopping.is_set():  # stopping: the runtime connects itself
            self.held.serve(sock, request, fds)
            return
        for fd in fds:
            os.close(fd)
        with sock:
            if op == "status":
                answer: dict[str, Any] = self.status()
            elif op == "stop":
                self.stopping.set()
                answer = {"stopping": True, "pid": os.getpid()}
            else:  # not a call for this keeper: the caller runs it by itself
                answer = {"run_here": True}
            with contextlib.suppress(OSError):
                sock.sendall(json.dumps(answer).encode() + b"\n")

    def _serve_call(self, sock: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        """Serve a call on the thread that read it (one hand-over fewer); its signals
        are read on another."""
        sizes = request.get("terminal_sizes")
        binding = streams.Binding(fds, list(sizes) if isinstance(sizes, list) else [])
        call = _Request(sock, binding)
        with self.lock:
            self.requests.add(call)
            self.served += 1
        THREADS.start(self._listen, call, name="keeper-signals")
        self._serve(call, request)

    def _serve(self, call: _Request, request: dict[str, Any]) -> None:
        argv = [str(word) for word in request.get("argv", [])]
        paths_local = paths.parse_call(argv).command in ("put", "get")
        answer: dict[str, Any] = {"exit": int(ExitCode.FAILED)}
        streams.bind(call.binding)
        try:
            try:
                with call.binding.lock:  # an interrupt from now on is raised in this thread
                    call.ident = threading.get_ident()
                    interrupted = call.interrupted
                if interrupted:  # before the call began: as if it came right after
                    raise KeyboardInterrupt
                with self._in_folder(request.get("cwd"), paths_local):
                    answer = {"exit": run_here(argv, keeper=self._lender(call))}
            finally:
                with call.binding.lock:
                    call.binding.active = False
        except KeyboardInterrupt:
            answer = {"exit": int(ExitCode.INTERRUPTED)}
        except RunHere:
            answer = {"run_here": True}
        finally:
            streams.bind(None)
            self._finish(call, answer)

    @contextlib.contextmanager
    def _in_folder(self, cwd: object, needed: bool) -> Any:
        """Commands that read local paths run in the caller's folder (one at a time:
        the folder is the process's)."""
        if not needed or not isinstance(cwd, str):
            yield
            return
        with self.cwd_lock:
            os.chdir(cwd)
            try:
                yield
            finally:
                os.chdir("/")

    def _lender(self, call: _Request) -> Any:
        def lend(hosts: Any, working_dir: Any, kwargs: Any, timeout: float) -> Any:
            return self.pool.connect(call.lease, hosts, working_dir, kwargs, timeout)

        return lend

    def _finish(self, call: _Request, answer: dict[str, Any]) -> None:
        self.pool.give_back(call.lease, keep=not call.interrupted)
        call.binding.close()
        with contextlib.suppress(OSError):
            call.sock.sendall(json.dumps(answer).encode() + b"\n")
        with contextlib.suppress(OSError):
            call.sock.close()
        with self.lock:
            self.requests.discard(call)
            self.last_used = time.monotonic()
        call.done.set()

    def _listen(self, call: _Request) -> None:
        """The caller's signals; its going away counts as SIGHUP."""
        sock = call.sock
        pending = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                self.interrupt(call)
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                with contextlib.suppress(ValueError):
                    if "signal" in json.loads(line):
                        self.interrupt(call)

    def interrupt(self, call: _Request) -> None:
        """Ctrl-C for one call: a ``KeyboardInterrupt`` in its thread, its futures
        cancelled; its runtimes cleaned up if it has not ended after a grace."""
        binding = call.binding
        with binding.lock:
            if not binding.active:
                return
            call.interrupted = True
            if call.ident is not None:  # else the call raises it itself as it begins
                _raise_in(call.ident, KeyboardInterrupt)
        for future in list(binding.futures):
            with contextlib.suppress(Exception):
                future.cancel()
        if not call.done.wait(_INTERRUPT_GRACE):
            log.warning("keeper.call.stuck", hosts=[r.host for _, r in call.lease.borrowed])
            self.pool.give_back(call.lease, keep=False)

    def done(self) -> bool:
        """Whether the keeper should exit: it has no call in flight, and has had none
        for longer than the idle time, or its ssh_config changed since it started (a
        newer keeper serves that)."""
        if self.held.busy():
            return False
        with self.lock:
            if self.requests:
                return False
            last_used = max(self.last_used, self.held.last_used)
            idle = time.monotonic() - last_used > paths.idle_seconds()
        return idle or paths.config_digest(self.config) != self.digest

    def close(self) -> None:
        """Interrupt the calls in flight (as Ctrl-C would), then clean every runtime up."""
        with self.lock:
            calls = list(self.requests)
        jobs = [THREADS.start(self.interrupt, call, name="keeper-interrupt") for call in calls]
        for job in jobs:
            job.join(_INTERRUPT_GRACE + 1)
        self.held.close()  # the channels lent end with their connections
        with self.lock:
            readers = list(self.readers)
        for job in readers:  # each answers (run_here, or its interrupted call's exit) first
            job.join(_READ_TIMEOUT + _INTERRUPT_GRACE + 1)
        self.pool.close()


def _turn_away(server: socket.socket) -> None:
    """Close the listening socket (its name already removed): the connections that
    arrived meanwhile are told to run their calls themselves, not reset."""
    server.setblocking(False)
    while True:
        try:
            sock, _ = server.accept()
        except OSError:
            break
        with sock, contextlib.suppress(OSError):
            sock.sendall(b'{"run_here": true}\n')
    server.close()


def serve(socket_path: str, key: str, ready_fd: int) -> int:
    """Run a keeper on ``socket_path`` until it is idle, stopped or stale."""
    folder = os.path.dirname(socket_path)
    lock_file = open(os.path.join(folder, f"k-{key}.lock"), "a")  # noqa: SIM115 - held for life
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another keeper of this name is up (or starting)
        os.write(ready_fd, b"taken\n")
        return 0
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        server.bind(socket_path)
    finally:
        os.umask(old_mask)
    server.listen(64)
    server.settimeout(_CHECK_EVERY)
    streams.install()
    _track_futures()
    keeper = Keeper(server, key)
    signal.signal(signal.SIGTERM, lambda *_: keeper.stopping.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("keeper.started", pid=os.getpid(), socket=socket_path)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    try:
        while not keeper.stopping.is_set():
            try:
                sock, _ = server.accept()
            except TimeoutError:
                if keeper.done():
                    break
                continue
            keeper.accept(sock)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        _turn_away(server)
        lock_file.close()  # a new keeper of this name may start while this one cleans up
        keeper.close()
        log.info("keeper.stopped", pid=os.getpid())
    return 0


def main() -> None:
    """``python -m actorcluster.cli.keeper_server SOCKET KEY READY_FD``."""
    sys.exit(serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))


if __name__ == "__main__":
    main()
