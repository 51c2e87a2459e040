"""Tasks, their steps and their futures."""

from __future__ import annotations

import pickle
from typing import Any, cast

import pykka

from actorcluster.errors._base import ActorClusterError, RemoteError, _head, _tail

__all__ = [
    "FutureTimeoutError",
    "RemoteFunctionError",
    "ReturnValueTooLargeError",
    "TaskCancelledError",
    "TaskExecutionError",
]


_CAUSE = BaseException.__dict__["__cause__"]


_UNLOADED = object()


class FutureTimeoutError(ActorClusterError, TimeoutError, pykka.Timeout):
    """A future was not done within the time asked (the work goes on).

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


class TaskExecutionError(RemoteError):
    """A step of a task failed (lazycluster's positional arguments, then ours).

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
        """The exception raised on the host, unpickled on first access (this trusts the
        host: see docs/reference/errors.md); None if it cannot be."""
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


class TaskCancelledError(ActorClusterError):
    """A task was stopped before it finished (by the user, or its runtime stopped).

    Args:
        task: the task's name.
        reason: why, in words.
        host: the runtime's host, if known.
    """

    def __init__(self, task: str, reason: str = "", host: str = "") -> None:
        super().__init__(task, reason, host)

    def __str__(self) -> str:
        task, reason, host = self.args
        where = f" on {host}" if host else ""
        return f"task {task!r}{where} was cancelled" + (f": {reason}" if reason else "")


class ReturnValueTooLargeError(RemoteError):
    """A function's return value would take more memory to load than allowed.

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
