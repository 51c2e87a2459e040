"""The agent's main loop: serves many concurrent requests over its stdin and stdout.

See the package docstring for how it gets onto a host. At start it moves the frame
stream out of harm's way: fd 1 is duplicated to a private descriptor that only frames
use, and fd 1 itself then points at /dev/null, so a print or an inherited descriptor
can never corrupt the stream. It writes :data:`frames.READY_MARKER` and a HELLO frame
{pid, python, cwd, hostname, session}, then reads frames from ``sys.stdin.buffer`` (the
very object the bootstrap read from).

The reading thread answers the stream's own frames (:mod:`links`), CANCEL, hands a
MODULE_SOURCE to the import it answers (:mod:`imports`), and handles uploads and
commands' input (:mod:`inputs`) in order; RUN, CALL, FS, GET, FACTS, PORTS and SETUP
each get a daemon thread. See :mod:`hub` for how each request answers exactly once.

The session outlives its stream (:mod:`links`): when the client goes away the agent
waits out the session's grace period for it to re-attach. When the session ends (no
client came back, or it sent CLOSE), on SIGTERM or SIGHUP, the agent kills every
process group it started and every process that left one carrying its mark
(:mod:`strays`; SIGTERM, a short grace, SIGKILL), removes every temporary folder and
partial upload, and exits with status 0. It writes diagnostics, sparingly,
to stderr only.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import sys
import threading
import typing
from typing import TYPE_CHECKING, Any, cast

from . import calls, commands, facts, files, frames, inputs, kills, sessions, transfers, watchdog
from .hub import Hub, checked_env, diag
from .imports import Importer
from .links import Links
from .listeners import listened_by
from .outbox import Outbox
from .probelock import probe_lock

if TYPE_CHECKING:
    import io
    from collections.abc import Sequence

__all__ = ["Agent", "main", "ports_free", "setup"]

Kind = frames.Kind

Handler = typing.Callable[[Hub, int, typing.Dict[str, Any]], None]  # typing.: run time (Python 3.8)


def setup(
    hub: Hub, request_id: int, payload: dict[str, Any], importer: Importer | None = None
) -> None:
    """SETUP {working_dir, temporary, env, shell?, session?, modules?} -> RESULT {value:
    the working dir}.

    Creates the working directory with its parents (mode 0700 if temporary, which also
    makes the agent remove it when the session ends), moves there, and makes ``env``
    the base of every later RUN and CALL (it is applied to ``os.environ`` too). A
    temporary working directory that exists already (a new agent after one was lost)
    is taken over as it is, once no other agent holds it. ``modules`` ({enabled,
    prefer_client, timeout}) turns on fetching modules the host lacks from the client
    (:mod:`.imports`).
    """
    env = checked_env(payload.get("env"))
    shell = payload.get("shell")
    if shell is not None and not (isinstance(shell, str) and os.access(shell, os.X_OK)):
        raise FileNotFoundError(f"shell {shell!r} is not an executable file")
    working_dir = payload.get("working_dir")
    if working_dir is not None:
        path = hub.resolve(working_dir)
        temporary = bool(payload.get("temporary"))
        created = not os.path.isdir(path)
        os.makedirs(path, 0o700 if temporary else 0o777, exist_ok=True)
        if temporary and created:
            os.chmod(path, 0o700)
        if temporary:
            hub.hold_dir(path)
        os.chdir(path)
        hub.working_dir = path
        if temporary:
            hub.add_temp_dir(path)
    base_env = dict(hub.base_env)
    for name, value in env.items():
        if value is None:
            base_env.pop(name, None)
            os.environ.pop(name, None)
        else:
            base_env[name] = os.environ[name] = value
    hub.base_env = base_env  # replaced whole: concurrent RUNs copy it unlocked
    if shell is not None:
        hub.shell = shell
    session = payload.get("session")
    if isinstance(session, dict):
        hub.configure_session(session.get("grace"), session.get("client_timeout"))
    if importer is not None and "modules" in payload:
        importer.configure(payload["modules"])
    hub.finish(request_id, Kind.RESULT, {"value": hub.working_dir})


def ports_free(ports: Sequence[int], host: str = "") -> list[bool]:
    """Whether each TCP port can be bound on ``host`` ("" means every interface).

    Binds with SO_REUSEADDR, as servers (sshd's forwarding included) bind: a port that
    is listened on, or bound by a socket that does not share it, counts as taken; one
    whose old connections linger in TIME_WAIT is free (a server can listen there now).
    Probes of one user's agents on a machine take turns (:mod:`probelock`), so they never
    see each other as takers.
    """
    if host:
        found = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        family, _, _, _, address = min(found, key=lambda info: info[0] != socket.AF_INET)
        bind_host = str(address[0])
    else:
        family, bind_host = socket.AF_INET, "0.0.0.0"
    for port in ports:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"not a TCP port number: {port!r}")
    free = []
    with probe_lock():
        for port in ports:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((bind_host, port))
                except OSError:
                    free.append(False)
                else:
                    free.append(True)
    return free


def _ports(hub: Hub, request_id: int, payload: dict[str, Any]) -> None:
    """PORTS {ports, host} -> RESULT {value: list[bool]}; PORTS {ports, group} ->
    RESULT {value: list[bool|None]} (listened on by that process group)."""
    ports = payload.get("ports")
    host = payload.get("host") or ""
    group = payload.get("group")
    if not isinstance(ports, (list, tuple)) or not isinstance(host, str):
        raise TypeError("PORTS needs 'ports' (a list of ints) and 'host' (a string)")
    if group is not None:
        if not isinstance(group, int) or isinstance(group, bool) or group <= 0:
            raise TypeError("PORTS 'group' must be a process group id")
        hub.finish(request_id, Kind.RESULT, {"value": listened_by(ports, group)})
        return
    hub.finish(request_id, Kind.RESULT, {"value": ports_free(ports, host)})


def _facts(hub: Hub, request_id: int, payload: dict[str, Any]) -> None:
    """FACTS {} -> RESULT {value: facts.gather_facts()}."""
    hub.finish(request_id, Kind.RESULT, {"value": facts.gather_facts()})


class Agent:
    """Reads frames and dispatches them.

    Args:
        stdin: the buffered binary stream frames arrive on (its ``read1`` is used).
        out_fd: the file descriptor frames are written to.
    """

    def __init__(self, stdin: io.BufferedReader, out_fd: int) -> None:
        outbox = Outbox()
        self.hub = Hub(outbox)
        self._stdin = stdin
        self._out_fd = out_fd
        self.links = Links(outbox, self.dispatch, self.hub.exit_soon)
        self.hub.links = self.links
        self.router = calls.OutputRouter(self.hub)
        self._uploads = transfers.Uploads(self.hub)
        self._inputs = inputs.Inputs(self.hub)
        self.importer = Importer(self.hub)
        self.hub.add_cleanup(self.importer.close)
        router, importer, command_inputs = self.router, self.importer, self._inputs
        self._threaded: dict[int, Handler] = {
            Kind.RUN: lambda hub, rid, body: commands.run_command(hub, rid, body, command_inputs),
            Kind.CALL: lambda hub, rid, body: calls.call_function(hub, router, rid, body),
            Kind.FS: files.fs_request,
            Kind.GET: transfers.get_request,
            Kind.FACTS: _facts,
            Kind.PORTS: _ports,
            Kind.SETUP: lambda hub, rid, body: setup(hub, rid, body, importer),
        }

    def hello(self) -> None:
        """Write the ready marker and the HELLO frame (with the session's address: where
        and how a reconnecting client re-attaches)."""
        # What agents killed with their watchdogs left, off the connect's path.
        threading.Thread(target=sessions.sweep, name="agent-sweep", daemon=True).start()
        folder = sessions.new_folder()
        self.hub.add_temp_dir(folder)
        hello = {
            "pid": os.getpid(),
            "python": platform.python_version(),
            "executable": sys.executable,
            "cwd": os.getcwd(),
            "hostname": socket.gethostname(),
            "session": self.links.listen(folder),
        }
        data = frames.READY_MARKER + frames.encode_frame(Kind.HELLO, 0, hello)
        view = memoryview(data)
        while view:
            view = view[os.write(self._out_fd, view) :]

    def serve(self) -> None:
        """Serve the client until the session ends (never returns: the session's end
        exits the process)."""
        self.links.start(self._stdin.read1, self._out_fd)
        self.links.serve_first()
        threading.Event().wait()  # the session goes on without its first stream

    def dispatch(self, frame: frames.Frame) -> None:
        """Handle one frame: inline, or on a new thread."""
        kind, request_id, payload = frame
        self.importer.mark_reader()  # this thread must never wait for the client
        handler = self._threaded.get(kind)
        if handler is not None:
            if self.hub.open(request_id):
                if kind == Kind.RUN and payload.get("stdin") is True:
                    self._inputs.open(request_id)  # before STDIN frames can arrive
                threading.Thread(
                    target=self._guarded,
                    args=(handler, request_id, payload),
                    name=f"agent-{request_id}",
                    daemon=True,
                ).start()
        elif kind == Kind.CANCEL:
            target = payload.get("target")
            if isinstance(target, int):
                self.hub.cancel(target)
        elif kind == Kind.PUT:
            self._uploads.begin(request_id, payload)
        elif kind == Kind.PUT_CHUNK:
            self._uploads.chunk(request_id, payload)
        elif kind == Kind.PUT_END:
            self._uploads.end(request_id)
        elif kind == Kind.MODULE_SOURCE:
            self.importer.answer(request_id, payload)
        elif kind == Kind.STDIN:
            self._inputs.data(request_id, payload)
        elif kind == Kind.STDIN_EOF:
            self._inputs.eof(request_id)
        else:
            message = f"unknown request kind {kind}"
            self.hub.send(Kind.ERROR, request_id, {"type": "ProtocolError", "message": message})

    def _guarded(self, handler: Handler, request_id: int, payload: dict[str, Any]) -> None:
        """Run ``handler``; whatever it raises answers ERROR {type, message}."""
        try:
            handler(self.hub, request_id, payload)
        except Exception as exc:  # every failure of a request is the client's to see
            self.hub.fail(request_id, exc)

    def install_signals(self) -> None:
        """Exit cleanly on SIGTERM and SIGHUP; ignore SIGINT (the client decides)."""
        try:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda *_: self.hub.exit_soon())
            # A Python handler, not SIG_IGN: an ignored signal stays ignored in children.
            signal.signal(signal.SIGINT, lambda *_: None)
        except ValueError:  # not the main thread: the bootstrap keeps the signals
            diag("not on the main thread; signals keep their handlers")


def main() -> None:
    """Run the agent on this process's stdin and stdout; never returns."""
    watchdog.start_watchdog()  # first: it must fork before any thread exists
    kills.become_subreaper()  # orphans of what it starts stay its own (see kills)
    stdin = cast("io.BufferedReader", sys.stdin.buffer)
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    agent = Agent(stdin, out_fd)
    agent.install_signals()
    agent.router.install()
    try:
        agent.hello()
        agent.serve()
    finally:
        agent.hub.shutdown_and_exit()
