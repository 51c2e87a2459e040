"""Every exception actorcluster raises, under one base class.

Families follow whose fault it is:

* the caller's (bad input, bad configuration): :class:`UsageError` and subclasses,
  which are also :class:`ValueError` so code written for lazycluster keeps working;
* the remote side's or the network's (host unreachable, agent lost, a command that
  failed): :class:`RemoteError` and subclasses;
* ours to manage (a supervisor that gave up, a cancelled task): the rest.

Every exception survives ``pickle`` (it may cross to or from the remote agent): each
class keeps its constructor arguments in ``args`` and rebuilds its message from them.

Text that came from a host (an error message, a traceback, output) is cut to at most
4,000 characters when a message is formatted: a host may send
megabytes, and printing an error must stay cheap.
Each also has the attributes lazycluster's exception of the same name has (``msg``,
``predecessor_excp``, ``task_step_index``, ``task``, ``host``, ``path``, ``port``,
``group``, ``runtime``, ``cause``), beside its own. Those that hold live objects (a
task, a runtime, a group) are not pickled: a copy from another process has ``None``
there (``task``: the task's name).
"""

from __future__ import annotations

import pickle
from typing import Any, cast

import pykka

__all__ = [
    "ActorClusterError",
    "AgentLostError",
    "AgentStartError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionRefusedHostError",
    "FileTransferError",
    "FutureTimeoutError",
    "HostKeyChangedError",
    "HostKeyError",
    "HostUnreachableError",
    "InvalidRuntimeError",
    "LazyclusterError",
    "MasterLostError",
    "MasterStartError",
    "MissingDependencyError",
    "NoPortsLeftError",
    "NoRuntimesDetectedError",
    "PathCreationError",
    "PortInUseError",
    "ProcessExitedError",
    "ProtocolError",
    "PythonVersionMismatchError",
    "RemoteError",
    "RemoteFunctionError",
    "RemoteOperationError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ReturnValueTooLargeError",
    "RevokedHostKeyError",
    "SupervisorGaveUpError",
    "TaskCancelledError",
    "TaskExecutionError",
    "UnknownHostError",
    "UnknownHostKeyError",
    "UnknownProcessKeyError",
    "UsageError",
]

_HOST_TEXT_SHOWN = 4000
"""At most this many characters of a host's text go into an error's message."""
_CAUSE = BaseException.__dict__["__cause__"]
_UNLOADED = object()


def _head(text: object, limit: int = _HOST_TEXT_SHOWN) -> str:
    """The start of a host's text, cut to ``limit`` characters (saying how much went)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def _tail(text: object, limit: int = _HOST_TEXT_SHOWN) -> str:
    """The end of a host's text, cut to ``limit`` characters (saying how much went)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters before]...{text[-limit:]}"


class ActorClusterError(Exception):
    """Base class of every error actorcluster raises.

    Subclasses take keyword-free positional arguments and format their message from
    them in :meth:`__str__`, so instances pickle and unpickle unchanged.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # OSError-derived subclasses would otherwise fold 2-3 args into errno/strerror.
        self.args = args

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        predecessor = self._given_predecessor()
        if predecessor is not None:  # lazycluster's LazyclusterError(msg, predecessor_excp)
            return f"{self.args[0]} Predecessor Exception: {predecessor}"
        return str(self.args[0])

    def _plain(self) -> bool:
        """Whether this class keeps lazycluster's plain ``(msg, predecessor_excp)``
        arguments (it formats no message of its own)."""
        return type(self).__str__ is ActorClusterError.__str__

    def _given_predecessor(self) -> BaseException | None:
        """The ``predecessor_excp`` given as second argument, lazycluster's way."""
        if self._plain() and len(self.args) > 1 and isinstance(self.args[1], BaseException):
            return self.args[1]
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.args == other.args

    def __hash__(self) -> int:
        return hash((type(self), self.args))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)

    @property
    def msg(self) -> str:
        """The message (lazycluster's attribute name): the one given to a plain
        ``LazyclusterError(msg, predecessor_excp)``, else the formatted message."""
        if self._plain() and self.args:
            return str(self.args[0])
        return str(self)

    @property
    def predecessor_excp(self) -> BaseException | None:
        """The exception given as lazycluster's ``predecessor_excp``, else the one this
        was raised from (``__cause__``), if any."""
        given = self._given_predecessor()
        return given if given is not None else self.__cause__


LazyclusterError = ActorClusterError
"""The name lazycluster's documentation uses for the base class."""


# --- the caller's fault ---------------------------------------------------------------


class UsageError(ActorClusterError, ValueError):
    """An argument or a call was wrong; the message names what and why."""


class ConfigurationError(UsageError):
    """A connection setting, ssh_config entry or spec field is invalid."""


class UnknownProcessKeyError(UsageError, KeyError):
    """No process (task or port exposure) is known under this key."""

    def __init__(self, key: str, host: str = "") -> None:
        super().__init__(key, host)

    def __str__(self) -> str:
        key, host = self.args
        where = f" on runtime {host}" if host else ""
        return f"unknown process key {key!r}{where}"


class PortInUseError(ActorClusterError):
    """A port that was asked for is already in use.

    Args:
        port: the busy port.
        side: where it is busy (``"local"``, a host name, or ``"group"``). Given
            lazycluster's way, ``PortInUseError(port, group, runtime)``, a non-string
            second argument is the group.
        runtime: the runtime it is busy on, if one (not pickled).
        group: the group it is busy in, if one (not pickled).
    """

    def __init__(self, port: int, side: Any = "", runtime: Any = None, group: Any = None) -> None:
        if side is None:  # lazycluster's PortInUseError(port, None, runtime)
            side = ""
        if not isinstance(side, str):
            side, group = "group", side if group is None else group
        if not side and runtime is not None:
            side = str(getattr(runtime, "host", ""))
        if not side and group is not None:
            side = "group"
        super().__init__(port, side)
        self.runtime: Any = runtime
        """The runtime the port is busy on (lazycluster's attribute), or None."""
        self.group: Any = group
        """The group the port is busy in (lazycluster's attribute), or None."""

    @property
    def port(self) -> int:
        """The busy port."""
        return int(self.args[0])

    def __str__(self) -> str:
        port, side = self.args
        where = f" on {side}" if side else ""
        return f"port {port} is already in use{where}"


class NoPortsLeftError(ActorClusterError):
    """None of the ports offered is free."""

    def __init__(self, ports: tuple[int, ...] | list[int] = (), side: str = "") -> None:
        super().__init__(tuple(ports), side)

    def __str__(self) -> str:
        ports, side = self.args
        where = f" on {side}" if side else ""
        shown = ", ".join(map(str, ports[:10])) + (", ..." if len(ports) > 10 else "")
        return f"no free port left{where} among [{shown}]"


class RemoteError(ActorClusterError):
    """Something on or on the way to a host went wrong."""


class InvalidRuntimeError(ActorClusterError):
    """The host is not usable as a runtime (unreachable, or no usable python3)."""

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(host, reason)

    @property
    def host(self) -> str:
        """The host that cannot be used."""
        return str(self.args[0])

    def __str__(self) -> str:
        host, reason = self.args
        return f"{host} is not a valid runtime" + (f": {reason}" if reason else "")


class HostUnreachableError(RemoteError, ConnectionError):
    """A host could not be reached or was lost.

    Args:
        host: the runtime's host name.
        reason: what happened, in words.
    """

    def __init__(self, host: str, reason: str = "") -> None:
        super().__init__(host, reason)

    @property
    def host(self) -> str:
        """The host that could not be reached."""
        return str(self.args[0])

    def __str__(self) -> str:
        host, reason = self.args
        return f"host {host} is unreachable" + (f": {reason}" if reason else "")


class UnknownHostError(HostUnreachableError, InvalidRuntimeError, ValueError):
    """The host name does not resolve (also a ``ValueError``, as lazycluster raised)."""


class ConnectionRefusedHostError(HostUnreachableError, InvalidRuntimeError):
    """The host refused the TCP connection (no sshd listening)."""


class AuthenticationError(HostUnreachableError, InvalidRuntimeError):
    """No offered key or password was accepted by the host."""


class HostKeyError(HostUnreachableError, InvalidRuntimeError):
    """The host's key could not be verified."""

    def __init__(self, host: str, reason: str = "", known_hosts: str = "") -> None:
        ActorClusterError.__init__(self, host, reason, known_hosts)

    def __str__(self) -> str:
        host, reason, known_hosts = self.args
        where = f" (known_hosts: {known_hosts})" if known_hosts else ""
        return f"host key of {host} rejected: {reason}{where}"


class UnknownHostKeyError(HostKeyError):
    """The host's key is not in known_hosts and trusting new keys was not asked for."""


class HostKeyChangedError(HostKeyError):
    """The host's key differs from the one in known_hosts: possible man in the middle."""


class RevokedHostKeyError(HostKeyError):
    """The host's key (or its certificate's CA) is marked ``@revoked`` in known_hosts."""


class AgentStartError(RemoteError, InvalidRuntimeError):
    """The remote agent did not come up; the message carries what the host printed."""

    def __init__(self, host: str, reason: str, output: str = "") -> None:
        ActorClusterError.__init__(self, host, reason, output)

    def __str__(self) -> str:
        host, reason, output = self.args
        tail = f"; host printed: {output[-2000:]!r}" if output else ""
        return f"agent on {host} did not start: {reason}{tail}"


class AgentLostError(HostUnreachableError):
    """The remote agent (or its connection) went away while a request was pending.

    Args:
        host: the runtime's host.
        reason: what happened, in words.
        kind: how it was lost: :attr:`SILENT` (no answer to heartbeats: a partition or
            a hung agent), :attr:`ENDED` (its stream ended), :attr:`BROKEN` (the stream
            or the protocol broke) or :attr:`CLOSED` (closed by the client).
    """

    SILENT = "silent"
    """No answer to heartbeats (or a send made no progress) for the timeout."""
    ENDED = "ended"
    """The agent's stream ended."""
    BROKEN = "broken"
    """The stream failed, or the agent broke the protocol."""
    CLOSED = "closed"
    """The client closed the session."""

    def __init__(self, host: str, reason: str = "", kind: str = "ended") -> None:
        ActorClusterError.__init__(self, host, reason, kind)

    @property
    def kind(self) -> str:
        """How it was lost (one of the class constants)."""
        return str(self.args[2])

    def __str__(self) -> str:
        host, reason, _ = self.args
        return f"host {host} is unreachable" + (f": {reason}" if reason else "")


class RequestTimeoutError(RemoteError, TimeoutError):
    """The agent did not answer a request in time (the request is cancelled)."""

    def __init__(self, host: str, request: str, seconds: float) -> None:
        ActorClusterError.__init__(self, host, request, seconds)

    def __str__(self) -> str:
        host, request, seconds = self.args
        return f"{host} did not answer {request} within {seconds} s"


class FutureTimeoutError(ActorClusterError, TimeoutError, pykka.Timeout):
    """A future was not done within the time asked (the work goes on: cancel it with
    ``future.cancel()``). A ``TimeoutError``, and a ``pykka.Timeout`` for code written
    against pykka.

    Args:
        what: what the future is of.
        seconds: how long was waited.
    """

    def __init__(self, what: str, seconds: float) -> None:
        ActorClusterError.__init__(self, what, seconds)

    def __str__(self) -> str:
        what, seconds = self.args
        shown = f"{seconds:g}" if isinstance(seconds, (int, float)) else str(seconds)
        return f"{what} was not done within {shown} s"


class ProtocolError(RemoteError):
    """A frame between client and agent was truncated, corrupt or unexpected."""


class RemoteOperationError(RemoteError):
    """An operation on a host (a file system call, a transfer, reading facts) failed
    there; ``error_type`` and ``errno`` are the host's (``OSError`` and ``28`` for a full
    disk, say).

    Args:
        host: the runtime's host.
        operation: what was asked, in words.
        error_type: the exception's class name on the host.
        message: its message.
        errno: its errno, for OS errors; None otherwise.
    """

    def __init__(
        self, host: str, operation: str, error_type: str, message: str, errno: int | None = None
    ) -> None:
        super().__init__(host, operation, error_type, message, errno)

    @property
    def host(self) -> str:
        """The host where it failed."""
        return str(self.args[0])

    @property
    def error_type(self) -> str:
        """The exception's class name on the host."""
        return str(self.args[2])

    @property
    def errno(self) -> int | None:
        """The OS error number, if any."""
        return None if self.args[4] is None else int(self.args[4])

    @property
    def reason(self) -> str:
        """``error_type: message``, as the host raised it (cut to 4,000 characters)."""
        return f"{_head(self.args[2], 200)}: {_head(self.args[3])}"

    def __str__(self) -> str:
        host, operation, _, _, _ = self.args
        return f"{operation} on {host} failed: {self.reason}"


class RequestCancelledError(ActorClusterError):
    """A request to a host's agent was cancelled before it answered."""

    def __init__(self, host: str, request: str) -> None:
        super().__init__(host, request)

    def __str__(self) -> str:
        host, request = self.args
        return f"{request} on {host} was cancelled"


class TaskExecutionError(RemoteError):
    """A step of a task failed.

    Takes lazycluster's positional arguments; ``command`` and ``exit_code`` are ours.

    Args:
        task_step_index: the failing step's index (0-based, as in the execution log).
        task: the :class:`~actorcluster.RuntimeTask` (or its name).
        host: the runtime's host.
        execution_log_file_path: the task's execution log file here ("" if none).
        output: the tail of the step's output.
        predecessor_excp: the error behind it, if one.
        command: what the step did (the command, or a description of the step).
        exit_code: the command's exit code, or None for non-command steps.
    """

    def __init__(
        self,
        task_step_index: int,
        task: Any,
        host: str,
        execution_log_file_path: str | None = "",
        output: str = "",
        predecessor_excp: BaseException | None = None,
        command: str = "",
        exit_code: int | None = None,
    ) -> None:
        name = task if isinstance(task, str) else str(getattr(task, "name", task))
        super().__init__(
            task_step_index,
            name,
            host,
            execution_log_file_path or "",
            output,
            predecessor_excp,
            command,
            exit_code,
        )
        if not isinstance(task, str):
            self._task = task

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)  # the task's name travels, not the task

    @property
    def task_name(self) -> str:
        """The failing task's name."""
        return str(self.args[1])

    @property
    def task(self) -> Any:
        """The failing :class:`~actorcluster.RuntimeTask` (lazycluster's attribute); its
        name where the task is not at hand (an error built by hand, or unpickled)."""
        return getattr(self, "_task", None) or self.task_name

    def attach_task(self, task: Any) -> None:
        """Make ``task`` the object :attr:`task` returns (not pickled)."""
        self._task = task

    @property
    def step(self) -> int:
        """Index of the failing step."""
        return int(self.args[0])

    @property
    def task_step_index(self) -> int:
        """Index of the failing step (lazycluster's name for :attr:`step`)."""
        return self.step

    @property
    def command(self) -> str:
        """The failing step's command or description."""
        return str(self.args[6])

    @property
    def exit_code(self) -> int | None:
        """The command's exit code, None for non-command steps."""
        code = self.args[7]
        return None if code is None else int(code)

    @property
    def output(self) -> str:
        """Tail of the step's output."""
        return str(self.args[4])

    @property
    def host(self) -> str:
        """The runtime's host."""
        return str(self.args[2])

    @property
    def execution_log_file_path(self) -> str | None:
        """The task's execution log file here (lazycluster's argument), if known."""
        path = self.args[3] or getattr(getattr(self, "_task", None), "execution_log_file_path", "")
        return str(path) if path else None

    @property
    def predecessor_excp(self) -> BaseException | None:
        """The error given as ``predecessor_excp``, else ``__cause__``."""
        given = self.args[5]
        return given if isinstance(given, BaseException) else self.__cause__

    def __str__(self) -> str:
        step, task, host, log_path, output, predecessor, command, exit_code = self.args
        where = f" on {host}" if host else ""
        what = f" ({command!r})" if command else ""
        code = "" if exit_code is None else f" exited with {exit_code}"
        log_file = f"; execution log: {log_path}" if log_path else ""
        cause = f"; predecessor exception: {predecessor}" if predecessor else ""
        tail = f"\n--- output tail ---\n{_tail(output, 2000)}" if output else ""
        return f"task {task!r}{where} failed at step {step}{what}{code}{log_file}{cause}{tail}"


class RemoteFunctionError(TaskExecutionError):
    """A function run on a host raised; carries the remote type name and traceback.

    The exception object itself (pickled on the host) is unpickled here only when it is
    asked for: through :attr:`exception`, or through ``__cause__``, which returns the
    same (the traceback printers of :mod:`traceback`, logging and pytest read it, so
    they show the original exception as the cause). Unpickling runs code the host sent,
    as unpickling a function's return value does: only ask for it from a host you trust
    (see docs/security.md). It is None when the exception did not pickle on the host or
    does not unpickle here (its class may not exist here).

    Args:
        task: the task's name.
        step: the failing step's index.
        command: the step, in words.
        exc_type: the qualified name of the exception's class on the host.
        remote_traceback: the traceback as formatted on the host.
        host: the runtime's host.
        exception_data: the exception, pickled on the host (None if it did not pickle).
    """

    def __init__(
        self,
        task: str,
        step: int,
        command: str,
        exc_type: str = "",
        remote_traceback: str = "",
        host: str = "",
        exception_data: bytes | None = None,
    ) -> None:
        ActorClusterError.__init__(
            self, task, step, command, exc_type, remote_traceback, host, exception_data
        )

    @property
    def task_name(self) -> str:
        """The failing task's name."""
        return str(self.args[0])

    @property
    def step(self) -> int:
        """Index of the failing step."""
        return int(self.args[1])

    @property
    def command(self) -> str:
        """The step, in words."""
        return str(self.args[2])

    @property
    def host(self) -> str:
        """The runtime's host."""
        return str(self.args[5])

    @property
    def execution_log_file_path(self) -> str | None:
        """The task's execution log file here, if the task is at hand."""
        path = getattr(getattr(self, "_task", None), "execution_log_file_path", None)
        return str(path) if path else None

    @property
    def predecessor_excp(self) -> BaseException | None:
        """The exception raised on the host (see :attr:`exception`)."""
        return self.__cause__

    @property
    def exit_code(self) -> int | None:
        """Functions have no exit code."""
        return None

    @property
    def exc_type(self) -> str:
        """Qualified name of the exception type raised on the host."""
        return str(self.args[3])

    @property
    def remote_traceback(self) -> str:
        """The traceback as formatted on the host."""
        return str(self.args[4])

    @property
    def output(self) -> str:
        """The remote traceback."""
        return self.remote_traceback

    @property
    def exception(self) -> BaseException | None:
        """The exception raised on the host, unpickled on first access (see the class
        docstring: this trusts the host); None if it cannot be."""
        loaded = self.__dict__.get("_exception", _UNLOADED)
        if loaded is _UNLOADED:
            loaded = self.__dict__["_exception"] = _unpickle_exception(self.args[6])
        return cast("BaseException | None", loaded)

    @property
    def __cause__(self) -> BaseException | None:
        """The cause set by ``raise ... from``, else :attr:`exception` (loaded now)."""
        cause: BaseException | None = _CAUSE.__get__(self)
        return cause if cause is not None else self.exception

    @__cause__.setter
    def __cause__(self, value: BaseException | None) -> None:
        _CAUSE.__set__(self, value)

    def __str__(self) -> str:
        task, step, command, exc_type, tb, host, _ = self.args
        where = f" on {host}" if host else ""
        return (
            f"task {task!r}{where} failed at step {step} ({command}): "
            f"{_head(exc_type, 200)} raised on the host\n--- remote traceback ---\n{_tail(tb)}"
        )


def _unpickle_exception(data: object) -> BaseException | None:
    """The exception pickled in ``data``; None if there is none or it does not load."""
    if not isinstance(data, bytes):
        return None
    try:
        loaded = pickle.loads(data)  # the host is trusted, and the user asked
    except Exception:  # its class may not exist here
        return None
    return loaded if isinstance(loaded, BaseException) else None


class FileTransferError(RemoteError, OSError):
    """A file or folder could not be sent or fetched.

    An :class:`OSError` whose ``errno`` is the OS error that failed the transfer where
    there was one, on either side (``errno.ENOSPC`` for a full disk), else None;
    ``filename`` is the path, ``strerror`` the reason.

    Args:
        host: the runtime's host.
        path: the file or folder.
        reason: what went wrong, in words.
        errno: the OS error number, if an OS error failed it.
    """

    def __init__(self, host: str, path: str, reason: str, errno: int | None = None) -> None:
        ActorClusterError.__init__(self, host, path, reason, errno)
        self.errno = errno
        self.strerror = reason
        self.filename = path

    def __str__(self) -> str:
        host, path, reason, _ = self.args
        return f"transfer of {path!r} with {host} failed: {_head(reason)}"


class PathCreationError(ActorClusterError):
    """A directory could not be created on a host."""

    def __init__(self, path: str, host: str | None = "", reason: str = "") -> None:
        super().__init__(path, host or "", reason)

    @property
    def path(self) -> str:
        """The path that could not be created."""
        return str(self.args[0])

    @property
    def host(self) -> str | None:
        """The host it was to be created on, None if not known."""
        return str(self.args[1]) or None

    def __str__(self) -> str:
        path, host, reason = self.args
        where = f" on {host}" if host else ""
        why = f": {reason}" if reason else ""
        return f"could not create directory {path!r}{where}{why}"


class MasterStartError(ActorClusterError):
    """A cluster's master did not start in time (lazycluster's ``host``, ``port`` and
    ``cause`` attributes are kept)."""

    def __init__(self, host: str, port: int, reason: str = "") -> None:
        super().__init__(host, port, reason)

    @property
    def host(self) -> str:
        """The host the master was started on."""
        return str(self.args[0])

    @property
    def port(self) -> int:
        """The master's port."""
        return int(self.args[1])

    @property
    def cause(self) -> str:
        """Why it did not start (with the master's last output), in words."""
        return str(self.args[2])

    def __str__(self) -> str:
        host, port, reason = self.args
        return f"master on {host}:{port} did not start" + (f": {_tail(reason)}" if reason else "")


class MasterLostError(RemoteError):
    """A cluster's master exited while the cluster ran; its workers were stopped.

    Args:
        cluster: the cluster's name.
        host: where the master ran.
        reason: how it ended (exit code, last output), in words.
    """

    def __init__(self, cluster: str, host: str, reason: str = "") -> None:
        super().__init__(cluster, host, reason)

    def __str__(self) -> str:
        cluster, host, reason = self.args
        why = f": {_tail(reason)}" if reason else ""
        return (
            f"the master of {cluster} on {host} exited{why}; its workers were stopped. "
            "Clean the cluster up and start a new one"
        )


class ProcessExitedError(RemoteError):
    """A supervised long-running process ended on its host.

    Args:
        host: the runtime's host.
        name: the process's name.
        code: its exit code (negative: killed by that signal), or None if it was lost
            with its agent.
        output: the last of what it printed.
    """

    def __init__(self, host: str, name: str, code: int | None, output: str = "") -> None:
        super().__init__(host, name, code, output)

    @property
    def code(self) -> int | None:
        """The exit code (None: lost with its agent)."""
        code = self.args[2]
        return code if isinstance(code, int) else None

    def __str__(self) -> str:
        host, name, code, output = self.args
        how = "was lost with its agent" if code is None else f"exited with code {code}"
        tail = f"; last output: {_tail(output, 2000)!r}" if output else ""
        return f"process {name!r} on {host} {how}{tail}"


class MissingDependencyError(RemoteError):
    """A program a cluster needs is not installed for a host's interpreter (nothing is
    ever installed on a host by actorcluster).

    Args:
        host: the runtime's host.
        interpreter: the Python interpreter that lacks it.
        requirement: what is missing (a module name).
        hint: how to fix it, in words.
    """

    def __init__(self, host: str, interpreter: str, requirement: str, hint: str = "") -> None:
        super().__init__(host, interpreter, requirement, hint)

    def __str__(self) -> str:
        host, interpreter, requirement, hint = self.args
        fix = f": {hint}" if hint else ""
        return f"{requirement} is not installed for {interpreter} on {host}{fix}"


class PythonVersionMismatchError(RemoteError):
    """A function cannot run on a host whose agent runs another Python minor version
    than the client: a cloudpickled function holds code objects that only the same
    minor version reads. Commands, file transfers, tunnels and processes still work there.

    Args:
        host: the runtime's host.
        host_python: the version of the host's interpreter (``3.9.18``).
        client_python: this client's version (``3.11.7``).
        interpreter: the host's interpreter running the agent, if known.
    """

    def __init__(
        self, host: str, host_python: str, client_python: str, interpreter: str = ""
    ) -> None:
        super().__init__(host, host_python, client_python, interpreter)

    def __str__(self) -> str:
        host, host_python, client_python, interpreter = self.args
        wanted = ".".join(str(client_python).split(".")[:2])
        at = f" ({interpreter})" if interpreter else ""
        return (
            f"functions cannot run on {host}: its agent runs Python {host_python}{at}, this "
            f"client Python {client_python}, and a pickled function loads only on the same "
            f"minor version. Install Python {wanted} there (python{wanted} on PATH, or a "
            f"pyenv or uv install, is found and used by itself) or name it with "
            f'connection_kwargs={{"python": "/path/to/python{wanted}"}}'
        )


class NoRuntimesDetectedError(ActorClusterError):
    """No runtime could be detected (by ``RuntimeManager`` from the ssh config).

    Args:
        predecessor_excp: the error that stopped the detection, or why, in words.
    """

    def __init__(self, predecessor_excp: BaseException | str | None = None) -> None:
        super().__init__(predecessor_excp)

    @property
    def predecessor_excp(self) -> BaseException | None:
        """The error that stopped the detection, if one."""
        cause = self.args[0]
        return cause if isinstance(cause, BaseException) else self.__cause__

    def __str__(self) -> str:
        cause = self.args[0]
        return "no runtimes detected" + (f": {cause}" if cause else "")


# --- ours to manage -------------------------------------------------------------------


class TaskCancelledError(ActorClusterError):
    """A task was stopped before it finished (by the user, or its runtime stopped)."""

    def __init__(self, task: str, reason: str = "", host: str = "") -> None:
        super().__init__(task, reason, host)

    def __str__(self) -> str:
        task, reason, host = self.args
        where = f" on {host}" if host else ""
        return f"task {task!r}{where} was cancelled" + (f": {reason}" if reason else "")


class SupervisorGaveUpError(ActorClusterError):
    """A supervisor exceeded its restart intensity and stopped.

    Args:
        supervisor: the supervisor's name.
        child: the child whose restarts exceeded the intensity.
        last_error: the child's last exit reason, in words.
        restarts: how many restarts happened within the period.
    """

    def __init__(self, supervisor: str, child: str, last_error: str, restarts: int = 0) -> None:
        super().__init__(supervisor, child, last_error, restarts)

    def __str__(self) -> str:
        supervisor, child, last_error, restarts = self.args
        return (
            f"supervisor {supervisor} gave up after {restarts} restarts of child "
            f"{child!r}; last error: {last_error}"
        )


class ReturnValueTooLargeError(RemoteError):
    """A function's return value would take more memory to load than the runtime's
    ``max_return_size`` allows (it is refused before it is unpickled).

    Args:
        task: the task's name.
        index: the step's index.
        host: the runtime's host.
        size: the pickled value's size in bytes.
        budget: the budget it passed, in bytes.
    """

    def __init__(self, task: str, index: int, host: str, size: int, budget: int) -> None:
        super().__init__(task, index, host, size, budget)

    def __str__(self) -> str:
        task, index, host, size, budget = self.args
        return (
            f"task {task!r} on {host}: the return value of step {index} ({size} bytes "
            f"pickled) would take over {budget} bytes to load; return less, or raise "
            "connection_kwargs['max_return_size']"
        )
