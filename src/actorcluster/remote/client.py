"""The typed agent client: one method per request kind, typed results.

:class:`AgentClient` speaks the frame protocol of :mod:`actorcluster.remote.agent.frames`
(with :class:`~actorcluster.remote.session.AgentSession` underneath); above ``remote/``
nobody sees a frame kind or a payload dict. Every method sends its request at once and
returns a :class:`Call`, which gives the typed result (``call.result(timeout)``), can be
cancelled on the host, and tells when it is done. A reply that is not what the protocol
says is a :class:`~actorcluster.errors.ProtocolError` naming the host; an operation that
failed on the host is a :class:`~actorcluster.errors.RemoteOperationError` with the
host's error type, message and errno.

Nothing a host sends is trusted to be small: the frame decoder bounds what it builds
(see :mod:`~actorcluster.remote.agent.frames`), and text taken from a reply (messages,
type names, tracebacks) is cut to a bounded length here, before anything formats it;
a value shown in an error is shown through a bounded ``repr``.

Callbacks given to a method (``on_output``, ``on_data``) and done callbacks run on the
session's reader thread: they are for the engine's own quick bookkeeping (hand the data
to an actor), never for user code.
"""

from __future__ import annotations

import platform
import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from actorcluster.errors import (
    ProtocolError,
    PythonVersionMismatchError,
    RemoteOperationError,
    RequestCancelledError,
    RequestTimeoutError,
)
from actorcluster.remote.agent.frames import Kind
from actorcluster.remote.command_input import CommandInput

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from actorcluster.remote.agent.frames import Frame
    from actorcluster.remote.session import AgentSession, Pending

__all__ = [
    "AgentClient",
    "Call",
    "CallOutcome",
    "CallRaised",
    "CallReturned",
    "CommandInput",
    "PathInfo",
    "Upload",
    "Written",
    "functions_run_on",
]

T = TypeVar("T")

_CANCELLED = "cancelled"
_NAME_LIMIT = 200
"""Characters kept of a type name a host sends."""
_MESSAGE_LIMIT = 16 * 1024
"""Characters kept of an error message a host sends."""
_TRACEBACK_LIMIT = 64 * 1024
"""Characters kept (the last ones) of a traceback a host sends."""
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 80, 80, 40


@dataclass(frozen=True, slots=True)
class CallReturned:
    """A function returned."""

    value: bytes
    """The return value, pickled on the host (cloudpickle)."""


@dataclass(frozen=True, slots=True)
class CallRaised:
    """A function raised on the host."""

    type_name: str
    """The exception's qualified class name."""
    traceback: str
    """The traceback as formatted on the host."""
    exception: bytes | None
    """The exception, pickled on the host (None if it did not pickle)."""


CallOutcome = CallReturned | CallRaised
"""What a function call ended with."""


@dataclass(frozen=True, slots=True)
class Written:
    """What an upload wrote."""

    size: int
    """Bytes written."""
    path: str
    """Where (absolute)."""


@dataclass(frozen=True, slots=True)
class PathInfo:
    """What a path on the host is (links followed)."""

    is_dir: bool
    """Whether it is a folder."""
    size: int
    """Its size in bytes."""
    mode: int
    """Its permission bits."""


class Call(Generic[T]):
    """A request sent to the agent, and its typed result once it answered."""

    __slots__ = ("_convert", "_pending", "_session", "what")

    def __init__(
        self, session: AgentSession, pending: Pending, what: str, convert: Callable[[Frame], T]
    ) -> None:
        self._session = session
        self._pending = pending
        self._convert = convert
        self.what = what
        """The request, in words (for errors)."""

    def __repr__(self) -> str:
        return (
            f"<Call {self.what!r} on {self._session.host} {'done' if self.done() else 'pending'}>"
        )

    @property
    def request_id(self) -> int:
        """The request's id on the wire."""
        return self._pending.request_id

    def done(self) -> bool:
        """Whether the agent answered (or the request failed)."""
        return self._pending.done()

    def result(self, timeout: float | None = None) -> T:
        """The typed result, waiting up to ``timeout`` seconds.

        Raises:
            RequestTimeoutError: no answer in time (the request is cancelled on the host).
            AgentLostError: the agent went away first.
            RemoteOperationError: the operation failed on the host.
            RequestCancelledError: the request was cancelled.
            ProtocolError: the reply was malformed.
        """
        if not self._pending.wait(timeout):
            self.cancel()
            raise RequestTimeoutError(self._session.host, self.what, timeout or 0.0)
        return self._convert(self._pending.outcome())

    def cancel(self) -> None:
        """Ask the agent to stop the request (it then answers "cancelled")."""
        if not self._pending.done():
            self._session.cancel(self._pending.request_id)

    def add_done_callback(self, callback: Callable[[Call[T]], None]) -> None:
        """Call ``callback(self)`` when done, on the reader thread (or here if done)."""
        self._pending.add_done_callback(lambda _: callback(self))


class Upload:
    """A file or a folder's tar stream being sent to the host, chunk by chunk."""

    __slots__ = ("_call", "_session")

    def __init__(self, session: AgentSession, call: Call[Written]) -> None:
        self._session = session
        self._call = call

    @property
    def refused(self) -> bool:
        """Whether the host already answered (an early failure: the rest is dropped)."""
        return self._call.done()

    def write(self, data: bytes) -> None:
        """Send a chunk.

        Raises:
            AgentLostError: the agent went away, or took nothing for the heartbeat
                timeout.
        """
        self._session.send(Kind.PUT_CHUNK, self._call.request_id, {"data": data})

    def finish(self) -> Call[Written]:
        """End the upload; the call's result says what the host wrote, and where."""
        if not self._call.done():
            self._session.send(Kind.PUT_END, self._call.request_id, {})
        return self._call

    def abort(self) -> None:
        """Give the upload up: the host discards what it received."""
        self._call.cancel()


class AgentClient:
    """The requests an agent answers, typed.

    Args:
        session: the session with the agent.
    """

    def __init__(self, session: AgentSession) -> None:
        self._session = session
        self.host = session.host
        """The runtime's host."""

    def __repr__(self) -> str:
        return f"<AgentClient {self.host} {'alive' if self.alive else 'lost'}>"

    @property
    def alive(self) -> bool:
        """Whether the agent is reachable."""
        return self._session.alive

    @property
    def hello(self) -> dict[str, Any]:
        """What the agent said when it started: pid, python, cwd, hostname."""
        return self._session.hello

    @property
    def pending_count(self) -> int:
        """Requests in flight."""
        return self._session.pending_count

    def check_functions(self) -> None:
        """Raise unless functions can run here: the agent's Python has the client's minor
        version (a cloudpickled function loads only there).

        Raises:
            PythonVersionMismatchError: the versions differ.
        """
        hello = self._session.hello
        host_python = str(hello.get("python") or "")
        if functions_run_on(host_python):
            return
        client_python = platform.python_version()
        interpreter = str(hello.get("executable") or "")
        raise PythonVersionMismatchError(self.host, host_python, client_python, interpreter)

    def close(self, reason: str = "closed by the client") -> None:
        """End the session: the agent kills what it started and removes its temp dirs."""
        self._session.close(reason)

    # --- plumbing -------------------------------------------------------------------

    def _request(
        self,
        kind: Kind,
        payload: dict[str, Any],
        what: str,
        convert: Callable[[Frame], T],
        on_frame: Callable[[Frame], None] | None = None,
    ) -> Call[T]:
        pending = self._session.submit(kind, payload, on_frame)
        return Call(self._session, pending, what, convert)

    def _value(self, what: str) -> Callable[[Frame], Any]:
        """A converter: RESULT's value, or the typed error of an ERROR."""

        def convert(frame: Frame) -> Any:
            if frame.kind != Kind.RESULT or "value" not in frame.payload:
                raise self._failure(frame, what)
            return frame.payload["value"]

        return convert

    def _failure(self, frame: Frame, what: str) -> Exception:
        """The error a reply that is not a success stands for."""
        payload = frame.payload
        if frame.kind == Kind.ERROR:
            kind = payload.get("type")
            if kind == _CANCELLED:
                return RequestCancelledError(self.host, what)
            errno = payload.get("errno")
            return RemoteOperationError(
                self.host,
                what,
                _text(kind, "error", _NAME_LIMIT),
                _text(payload.get("message"), "", _MESSAGE_LIMIT),
                errno if isinstance(errno, int) and not isinstance(errno, bool) else None,
            )
        return ProtocolError(f"{self.host}: unexpected reply {_kind_name(frame.kind)} to {what}")

    # --- processes and functions ----------------------------------------------------

    def run(
        self,
        command: str,
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        on_output: Callable[[int, bytes], None] | None = None,
    ) -> Call[int]:
        """Run a shell command; the result is its exit code (negative: killed by that
        signal). Output goes to ``on_output`` as it comes (discarded without one); the
        command reads an empty stdin."""
        return self._run(command, env, cwd, on_output, None)

    def run_with_input(
        self,
        command: str,
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        on_output: Callable[[int, bytes], None] | None = None,
    ) -> tuple[Call[int], CommandInput]:
        """Run a shell command as :meth:`run` does, its stdin fed by what is written to
        the :class:`~actorcluster.remote.command_input.CommandInput` returned with it."""
        command_input = CommandInput(self._session)
        call = self._run(command, env, cwd, on_output, command_input)
        return call, command_input

    def _run(
        self,
        command: str,
        env: Mapping[str, str | None] | None,
        cwd: str | None,
        on_output: Callable[[int, bytes], None] | None,
        command_input: CommandInput | None,
    ) -> Call[int]:
        payload = {
            "cmd": command,
            "env": dict(env or {}),
            "cwd": cwd,
            "stream": on_output is not None,
        }
        if command_input is not None:
            payload["stdin"] = True
        what = f"command {command!r}"

        def convert(frame: Frame) -> int:
            if frame.kind != Kind.EXIT:
                raise self._failure(frame, what)
            return self._int(frame, "code", what)

        route = _output_router(on_output, command_input)
        call = self._request(Kind.RUN, payload, what, convert, route)
        if command_input is not None:
            command_input._bind(call._pending)
        return call

    def call(
        self,
        payload: bytes,
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: str | None = None,
        on_output: Callable[[int, bytes], None] | None = None,
        name: str = "function",
        isolated: bool = False,
    ) -> Call[CallOutcome]:
        """Call a cloudpickled ``(function, kwargs)``; the result says what it returned
        or raised. Its prints go to ``on_output``. ``isolated``: in a child process of
        the agent, not on one of its threads."""
        self.check_functions()
        what = f"function {name}"

        def convert(frame: Frame) -> CallOutcome:
            body = frame.payload
            if frame.kind == Kind.RESULT and isinstance(body.get("value"), bytes):
                return CallReturned(body["value"])
            if frame.kind == Kind.RAISED:
                exception = body.get("exc")
                return CallRaised(
                    _text(body.get("type"), "Exception", _NAME_LIMIT),
                    _text(body.get("traceback"), "", -_TRACEBACK_LIMIT),
                    exception if isinstance(exception, bytes) else None,
                )
            raise self._failure(frame, what)

        request: dict[str, Any] = {"payload": payload, "env": dict(env or {}), "cwd": cwd}
        if isolated:
            request["isolated"] = True
        return self._request(Kind.CALL, request, what, convert, _output_router(on_output))

    # --- files ----------------------------------------------------------------------

    def upload(
        self,
        path: str,
        *,
        folder: bool,
        mode: int | None = None,
        name: str | None = None,
        special: bool = False,
    ) -> Upload:
        """Start sending a file (``mode``: its permission bits) or a folder's tar stream
        to ``path`` (a file goes into ``path`` as ``name`` when that is a folder); feed
        it with :meth:`Upload.write`, end it with :meth:`Upload.finish`. It lands all or
        nothing; modes lose the host's umask, and setuid, setgid and sticky bits unless
        ``special``."""
        what = f"upload to {path!r}"
        payload = {
            "path": path,
            "kind": "tar" if folder else "file",
            "mode": mode,
            "name": name,
            "special": special,
        }
        value = self._int_value(what)

        def convert(frame: Frame) -> Written:
            written = value(frame)
            where = frame.payload.get("path")
            return Written(written, _text(where, path, _MESSAGE_LIMIT))

        call = self._request(Kind.PUT, payload, what, convert)
        return Upload(self._session, call)

    def download(self, path: str, on_data: Callable[[bytes, str, int | None], None]) -> Call[int]:
        """Fetch a file, or a folder as a tar stream, chunk by chunk into ``on_data``;
        the result is the number of bytes sent."""
        what = f"download of {path!r}"

        def route(frame: Frame) -> None:
            if frame.kind == Kind.DATA:
                body = frame.payload
                data, kind, mode = body.get("data"), body.get("kind"), body.get("mode")
                if not isinstance(data, bytes) or kind not in ("file", "tar"):
                    raise ProtocolError(f"{self.host}: malformed DATA in {what}")
                on_data(data, kind, mode if isinstance(mode, int) else None)

        return self._request(Kind.GET, {"path": path}, what, self._int_value(what), route)

    def stat(self, path: str) -> Call[PathInfo | None]:
        """What ``path`` is on the host; None if it does not exist."""
        what = f"stat of {path!r}"
        value = self._value(what)

        def convert(frame: Frame) -> PathInfo | None:
            info = value(frame)
            if info is None:
                return None
            if not isinstance(info, dict):
                raise ProtocolError(f"{self.host}: malformed reply to {what}: {_shown(info)}")
            size, mode = info.get("size", 0), info.get("mode", 0)
            if not (_is_int(size) and _is_int(mode)):
                raise ProtocolError(f"{self.host}: malformed reply to {what}: {_shown(info)}")
            return PathInfo(bool(info.get("is_dir")), size, mode)

        return self._request(Kind.FS, {"op": "stat", "path": path}, what, convert)

    def mkdir(self, path: str, mode: int | None = None) -> Call[str]:
        """Create a folder with its parents (``mode`` for the folder itself); the result
        is its absolute path."""
        what = f"creating folder {path!r}"
        return self._request(
            Kind.FS, {"op": "mkdir", "path": path, "mode": mode}, what, self._str_value(what)
        )

    def rmtree(self, path: str) -> Call[bool]:
        """Remove a folder or file; the result says whether nothing of it is left."""
        what = f"removing {path!r}"
        return self._request(Kind.FS, {"op": "rmtree", "path": path}, what, self._bool_value(what))

    def mkdtemp(self, prefix: str = "actorcluster-", *, temporary: bool) -> Call[str]:
        """Create a private (0700) folder; ``temporary`` ones go when the agent exits."""
        what = "creating a temporary folder"
        payload = {"op": "mkdtemp", "prefix": prefix, "temporary": temporary}
        return self._request(Kind.FS, payload, what, self._str_value(what))

    def which(
        self, names: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Call[dict[str, str | None]]:
        """Where each executable is found on the PATH (``env`` applied); None if not."""
        what = "looking up executables"
        value = self._value(what)

        def convert(frame: Frame) -> dict[str, str | None]:
            found = value(frame)
            if not isinstance(found, dict):
                raise ProtocolError(f"{self.host}: malformed reply to {what}")
            return {
                str(name): (path if isinstance(path, str) else None) for name, path in found.items()
            }

        payload = {"op": "which", "names": list(names), "env": dict(env or {})}
        return self._request(Kind.FS, payload, what, convert)

    # --- the host -------------------------------------------------------------------

    def setup(
        self,
        working_dir: str | None,
        *,
        temporary: bool,
        env: Mapping[str, str | None] | None = None,
        shell: str | None = None,
        session: Mapping[str, float] | None = None,
        modules: Mapping[str, object] | None = None,
    ) -> Call[str]:
        """Create (with parents) and enter the working directory; ``env`` becomes the
        base of every later command and call; ``session`` sets the session's ``grace``
        (seconds it waits for a reconnect) and ``client_timeout`` (seconds of silence
        after which the client counts as gone); ``modules`` ({enabled, prefer_client,
        timeout}) turns on asking the client for modules the host lacks (answered by a
        :class:`~actorcluster.remote.modules.ModuleServer`). The result is the absolute
        working dir."""
        what = f"setting up working directory {working_dir!r}"
        payload: dict[str, Any] = {
            "working_dir": working_dir,
            "temporary": temporary,
            "env": dict(env or {}),
        }
        if shell is not None:
            payload["shell"] = shell
        if session is not None:
            payload["session"] = dict(session)
        if modules is not None:
            payload["modules"] = dict(modules)
        return self._request(Kind.SETUP, payload, what, self._str_value(what))

    def facts(self) -> Call[dict[str, Any]]:
        """The host's facts: cpu_cores, memory, os, python_version, gpus, hostname."""
        what = "reading host facts"
        value = self._value(what)

        def convert(frame: Frame) -> dict[str, Any]:
            facts = value(frame)
            if not isinstance(facts, dict):
                raise ProtocolError(f"{self.host}: malformed reply to {what}")
            return dict(facts)

        return self._request(Kind.FACTS, {}, what, convert)

    def ports_free(self, ports: Sequence[int], host: str = "") -> Call[list[bool]]:
        """Whether each TCP port can be bound on the host (on ``host``, "" for all)."""
        what = f"checking ports {list(ports)[:8]}"
        value = self._value(what)

        def convert(frame: Frame) -> list[bool]:
            free = value(frame)
            if not isinstance(free, list) or len(free) != len(ports):
                raise ProtocolError(f"{self.host}: malformed reply to {what}")
            return [bool(item) for item in free]

        return self._request(Kind.PORTS, {"ports": list(ports), "host": host}, what, convert)

    def ports_listened_by(self, ports: Sequence[int], group: int) -> Call[list[bool | None]]:
        """Whether a process of process group ``group`` listens on each TCP port (None
        where the host cannot tell: not Linux)."""
        what = f"checking who listens on ports {list(ports)[:8]}"
        value = self._value(what)

        def convert(frame: Frame) -> list[bool | None]:
            held = value(frame)
            if not isinstance(held, list) or len(held) != len(ports):
                raise ProtocolError(f"{self.host}: malformed reply to {what}")
            return [None if item is None else bool(item) for item in held]

        payload = {"ports": list(ports), "host": "", "group": group}
        return self._request(Kind.PORTS, payload, what, convert)

    def ping(self) -> Call[None]:
        """A round trip."""

        def convert(frame: Frame) -> None:
            if frame.kind != Kind.PONG:
                raise self._failure(frame, "ping")

        return self._request(Kind.PING, {}, "ping", convert)

    # --- converters -----------------------------------------------------------------

    def _int(self, frame: Frame, key: str, what: str) -> int:
        value = frame.payload.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(
                f"{self.host}: {key} {_shown(value)} in the reply to {what} is not an integer"
            )
        return value

    def _int_value(self, what: str) -> Callable[[Frame], int]:
        def convert(frame: Frame) -> int:
            if frame.kind != Kind.RESULT:
                raise self._failure(frame, what)
            return self._int(frame, "value", what)

        return convert

    def _str_value(self, what: str) -> Callable[[Frame], str]:
        value = self._value(what)

        def convert(frame: Frame) -> str:
            result = value(frame)
            if not isinstance(result, str):
                raise ProtocolError(f"{self.host}: malformed reply to {what}")
            return result

        return convert

    def _bool_value(self, what: str) -> Callable[[Frame], bool]:
        value = self._value(what)
        return lambda frame: bool(value(frame))


def _output_router(
    on_output: Callable[[int, bytes], None] | None,
    command_input: CommandInput | None = None,
) -> Callable[[Frame], None] | None:
    """A frame callback handing OUTPUT frames' data to ``on_output`` (and STDIN_TAKEN
    frames to ``command_input``)."""
    if on_output is None and command_input is None:
        return None

    def route(frame: Frame) -> None:
        if frame.kind == Kind.OUTPUT and on_output is not None:
            data, fd = frame.payload.get("data"), frame.payload.get("fd")
            if isinstance(data, bytes) and fd in (1, 2):
                on_output(fd, data)
        elif frame.kind == Kind.STDIN_TAKEN and command_input is not None:
            command_input._route(frame)

    return route


def _text(value: object, default: str, limit: int) -> str:
    """A host's text: ``value`` if it is a string, cut to its first ``limit``
    characters (its last ``-limit`` when negative); else ``default``."""
    if not isinstance(value, str):
        return default
    return value[limit:] if limit < 0 else value[:limit]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """A bounded ``repr`` of something a host sent (for error messages)."""
    return _REPR.repr(value)


def _kind_name(kind: int) -> str:
    try:
        return Kind(kind).name
    except ValueError:
        return f"kind {kind}"


def functions_run_on(python: str) -> bool:
    """Whether a host whose agent runs Python ``python`` (``3.9.18``; empty when not
    known) can run this client's functions: the same minor version."""
    return not python or python.split(".")[:2] == platform.python_version().split(".")[:2]
