"""RuntimeTask: the builder users know (``.run_command().send_file()...``).

What it sends to a runtime is an immutable :class:`~actorcluster.messages.tasks.Task`;
the events that come back build its execution log, its log file and its function
returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.errors import TaskCancelledError, TaskExecutionError, UsageError
from actorcluster.futures import ActorFuture
from actorcluster.messages.events import (
    FunctionReturned,
    StepFinished,
    StepOutput,
    StepStarted,
    TaskFinished,
    TransferProgress,
)
from actorcluster.messages.steps import GetFile, RunCommand, RunFunction, SendFile
from actorcluster.messages.tasks import Task
from actorcluster.runtimes import log_files
from actorcluster.runtimes.environment import checked_env
from actorcluster.runtimes.execution_log import ExecutionLog
from actorcluster.runtimes.pickling import dumps_call
from actorcluster.runtimes.standalone import HOME, connection_target

if TYPE_CHECKING:
    from collections.abc import Generator

    from pykka._types import OptExcInfo

    from actorcluster.messages.events import TaskEvent
    from actorcluster.messages.steps import Step
    from actorcluster.runtimes.processes import TaskProcess
    from actorcluster.steps import TaskControl

__all__ = ["ProgressCallback", "RuntimeTask", "TaskFuture"]

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(done, total)``: bytes moved so far, and in all when known."""


log = get_logger(__name__)


def _non_empty(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise UsageError(f"{name} must not be empty")
    return value


def _function_name(function: Callable[..., Any]) -> str:
    if isinstance(function, functools.partial):
        return f"partial({_function_name(function.func)})"
    return str(getattr(function, "__qualname__", None) or type(function).__name__)


class TaskFuture(ActorFuture["RuntimeTask"]):
    """The future of one execution of a task: a failure that is a
    :class:`TaskExecutionError` gets the task as its ``task`` attribute (lazycluster's)
    before anyone waiting sees it."""

    def __init__(self, task: RuntimeTask, what: str = "") -> None:
        super().__init__(what or f"task {task.name!r}")
        self._task = task

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Fail the future (see :meth:`ActorFuture.set_exception`)."""
        error = (exc_info or sys.exc_info())[1]
        if isinstance(error, TaskExecutionError):
            error.attach_task(self._task)
        super().set_exception(exc_info)


def _task_name(name: Any) -> str:
    if not isinstance(name, str):
        raise UsageError(f"task name must be a string, not {type(name).__name__}")
    return name


class RuntimeTask:
    """A named sequence of steps to run on a runtime.

    Args:
        name: the task's name; None or empty: a unique one, ``str(id(task))`` as in
            lazycluster.
        retries: how many times the whole step list is re-sent when an execution is
            lost with its host (:class:`~actorcluster.errors.HostUnreachableError`,
            :class:`~actorcluster.errors.AgentLostError`); a step that failed on its own
            (a non-zero exit, a function that raised) is never retried. Needs
            ``idempotent=True``. Through a group with ``host=None``, a retry goes to
            a reachable host of the group (failover).
        idempotent: the step list is safe to run more than once (the user's word:
            nothing tells a lost execution that did its work from one that did not).

    Raises:
        UsageError: ``retries`` is not a number >= 0, or > 0 without ``idempotent=True``.
    """

    def __init__(
        self, name: str | None = None, *, retries: int = 0, idempotent: bool = False
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UsageError(f"retries must be a whole number >= 0, not {retries!r}")
        if retries and not idempotent:
            raise UsageError(
                f"retries={retries} re-sends the whole step list: pass idempotent=True "
                "if running it twice is safe"
            )
        self.retries = retries
        """How many times an execution lost with its host is re-sent."""
        self.idempotent = idempotent
        """Whether the step list is safe to run more than once."""
        self._name = _task_name(name) if name else str(id(self))
        self._steps: list[Step] = []
        self._progress: dict[int, ProgressCallback] = {}
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()
        self._log = ExecutionLog()
        self._returns: list[bytes] = []
        self._log_file_path: str | None = None
        self._log_file_pending: list[int] | None = []  # None once the file exists
        self._debug = False
        self._host = ""
        self._future: ActorFuture[Any] | None = None
        self._process: TaskProcess | None = None
        self._control: TaskControl | None = None
        self._sink: Callable[[str], None] | None = None
        self._copies = 0
        self.omit_on_join = False
        """If True, ``join()`` does not wait for this task."""

    def __repr__(self) -> str:
        state = (
            "not run" if self._future is None else ("done" if self._future.done() else "running")
        )
        shown = f"<RuntimeTask {self._name!r} steps={len(self._steps)} {state}"
        returns = list(self._returns) if state == "done" else []  # no lock: a repr never waits
        if returns:
            from actorcluster.runtimes.reprs import returns_text

            shown += f" returns={returns_text(returns)}"
        return shown + ">"

    def _repr_html_(self) -> str:
        """A notebook's view: name, host, state, steps and the latest output."""
        from actorcluster.runtimes.reprs import task_html

        return task_html(self)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RuntimeTask:
        """A copy to run elsewhere (a group's broadcast): the same steps, environment,
        progress callbacks and ``omit_on_join``, none of this task's results, and
        lazycluster's name for it: ``<name>-<n>`` for the n-th copy."""
        self._copies += 1
        copied = RuntimeTask(f"{self._name}-{self._copies}")
        copied._steps = list(self._steps)  # the steps are immutable messages
        copied._progress = dict(self._progress)
        copied._env = dict(self._env)
        copied.omit_on_join = self.omit_on_join
        copied.retries, copied.idempotent = self.retries, self.idempotent
        return copied

    # --- building -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's name; assignable while it is not running (the next execution's
        log, process key and ``execution_log(name)`` lookups use the new one)."""
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        name = _task_name(name)
        if not name:
            raise UsageError("task name must not be empty")
        if self.is_running:
            raise UsageError(
                f"task {self._name!r} is running: rename it after it ended (join() waits)"
            )
        self._name = name

    def run_command(self, command: str) -> RuntimeTask:
        """Add a step that runs a shell command (passed to the shell literally).

        Raises:
            ValueError: the command is empty (a :class:`UsageError`).
        """
        self._steps.append(RunCommand(command=_non_empty("command", command)))
        return self

    def send_file(
        self,
        local_path: str,
        remote_path: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        preserve_special_bits: bool = False,
    ) -> RuntimeTask:
        """Add a step that sends a file or a folder to the host.

        A file goes to ``remote_path`` (into it, under its own name, when that is a
        folder or ends with ``/``); a folder's content goes into the folder
        ``remote_path`` (merged into it if it exists, like ``scp -r``). None: the
        working directory, under the local name. ``progress(done, total)`` is called as
        bytes go out (total None for folders).

        It lands all or nothing: under a temporary name, moved into place once
        complete; a failed or interrupted transfer leaves the target as it was. Files
        keep their permission bits less the host's umask; setuid, setgid and sticky
        bits are dropped unless ``preserve_special_bits``.

        Raises:
            ValueError: ``local_path`` is empty.
        """
        local = _non_empty("local_path", local_path)
        if remote_path is not None and not isinstance(remote_path, str):
            raise UsageError("remote_path must be a string or None")
        self._add_progress(progress)
        self._steps.append(
            SendFile(
                local_path=local,
                remote_path=remote_path or None,
                preserve_special_bits=bool(preserve_special_bits),
            )
        )
        return self

    def get_file(
        self,
        remote_path: str,
        local_path: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        preserve_special_bits: bool = False,
    ) -> RuntimeTask:
        """Add a step that fetches a file or folder from the host.

        None for ``local_path``: the current directory, under the remote name.
        ``progress(done, total)`` is called as bytes arrive (total None if unknown).
        It lands all or nothing, with modes as :meth:`send_file` says (this side's
        umask; setuid, setgid and sticky bits only with ``preserve_special_bits``);
        links in a folder stay links and are never followed.

        Raises:
            ValueError: ``remote_path`` is empty.
        """
        remote = _non_empty("remote_path", remote_path)
        if local_path is not None and not isinstance(local_path, str):
            raise UsageError("local_path must be a string or None")
        self._add_progress(progress)
        self._steps.append(
            GetFile(
                remote_path=remote,
                local_path=local_path or None,
                preserve_special_bits=bool(preserve_special_bits),
            )
        )
        return self

    def _add_progress(self, progress: ProgressCallback | None) -> None:
        if progress is not None:
            if not callable(progress):
                raise UsageError("progress must be callable")
            self._progress[len(self._steps)] = progress

    def run_function(self, function: Callable[..., Any], **func_kwargs: Any) -> RuntimeTask:
        """Add a step that calls ``function(**func_kwargs)`` on the host.

        Any callable cloudpickle can ship works: functions, lambdas, closures,
        ``functools.partial``, bound methods. Its return value is in
        :attr:`function_returns`. A pure-Python module it imports that the host lacks
        is sent from the client when imported (once per runtime session; see the
        ``ship_modules*`` keys of the runtime's ``connection_kwargs``); compiled
        modules must be installed on the host.

        Raises:
            ValueError: ``function`` is not callable, or it or its arguments cannot be
                pickled (the message says which).
        """
        if function is None or not callable(function):
            raise UsageError(f"function must be callable, not {type(function).__name__}")
        name = _function_name(function)
        try:
            payload = dumps_call(function, func_kwargs)
        except Exception as exc:
            raise UsageError(f"cannot pickle function {name} or its arguments: {exc}") from exc
        self._steps.append(RunFunction(payload=payload, name=name))
        return self

    def _isolate_last_step(self) -> None:
        """Make the last step (a function) run in a child process of the agent."""
        step = self._steps[-1]
        assert isinstance(step, RunFunction)
        self._steps[-1] = dataclasses.replace(step, isolated=True)

    @property
    def env_variables(self) -> dict[str, str]:
        """Environment variables for every step (set by the runtime when executed)."""
        return self._env

    @env_variables.setter
    def env_variables(self, env_variables: dict[str, str]) -> None:
        self._env = checked_env(env_variables)

    def build(self, env: dict[str, str] | None = None) -> Task:
        """The immutable task message for the current steps, run in ``env`` (default:
        the task's own :attr:`env_variables`). A task without steps does nothing and
        succeeds, as in lazycluster."""
        env = self._env if env is None else env
        return Task(name=self._name, steps=tuple(self._steps), env=tuple(env.items()))

    # --- results --------------------------------------------------------------------

    @property
    def execution_log(self) -> list[str]:
        """One entry per executed step, in order: the step's output (stdout and stderr
        as they came). The live list: it grows while the task runs."""
        return self._log

    @property
    def execution_log_file_path(self) -> str | None:
        """The log file of the latest execution, updated after each step.

        The file is written once a step printed something or when this path is asked
        for after a step ended (a task whose steps print nothing costs no file until
        then); as lazycluster notes, it may not exist before the first step ended.
        """
        with self._lock:
            queued = self._write_pending_log_entries()
        if queued:
            log_files.flush()
        return self._log_file_path

    @property
    def function_returns(self) -> Generator[object, None, None]:
        """The return values of the task's functions, in the order they ran.

        The first value is read after :meth:`join`: a running task is waited for (an
        ``omit_on_join`` one is not), as in lazycluster.
        """
        if not (self.omit_on_join and self._process is not None):
            self._await_end()
        with self._lock:
            returns = list(self._returns)
        for value in returns:
            yield pickle.loads(value)

    @property
    def future(self) -> ActorFuture[Any] | None:
        """The future of the latest execution (resolved with this task, or failed
        with its error), if any."""
        return self._future

    @property
    def process(self) -> TaskProcess | None:
        """The process the latest asynchronous execution runs in
        (``multiprocessing.Process``'s face: ``is_alive()``, ``join()``, ``terminate()``,
        ``kill()``, ``pid``, ``exitcode``); None if not yet or synchronously executed."""
        return self._process

    @property
    def is_running(self) -> bool:
        """Whether the latest execution is still running."""
        return self._future is not None and not self._future.done()

    @property
    def exit_status(self) -> int | None:
        """``multiprocessing``'s ``exitcode`` for the latest execution: None while
        running (or never run), 0 if it succeeded, ``-SIGTERM`` if it was cancelled,
        1 if it failed."""
        future = self._future
        if future is None or not future.done():
            return None
        try:
            future.get(timeout=0)
        except TaskCancelledError:
            return -signal.SIGTERM
        except Exception:  # any failure of the task
            return 1
        return 0

    def join(self, timeout: float | None = None) -> None:
        """Wait until the latest execution ended and its log file is written; at once
        for an asynchronous execution marked ``omit_on_join`` (as in lazycluster: its
        ``process.join()`` does wait).

        Errors of the execution are not raised here; see :attr:`future`.
        """
        if self.omit_on_join and self._process is not None:
            return
        self._wait(timeout)

    def _wait(self, timeout: float | None = None) -> None:
        """Wait until the latest execution ended and its log file is written."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._future is not None and self._await_end(timeout):
            left = 10.0 if deadline is None else max(0.0, deadline - time.monotonic())
            log_files.flush(left)

    def _await_end(self, timeout: float | None = None) -> bool:
        """Wait until the latest execution ended (if any); whether it has."""
        future = self._future
        if future is None or future.done():
            return True
        try:
            future.get(timeout=timeout)
        except pykka.Timeout:
            return False
        except Exception:  # the task's error belongs to whoever reads the future
            return True
        return True

    def stop(self, reason: str = "stopped by the user") -> None:
        """Cancel the running execution: its remote process group is killed."""
        if self._control is not None:
            self._control.cancel(reason)

    def print_log(self) -> None:
        """Print the execution log as lazycluster does: ``Log of Task NAME:``, then each
        entry as ``INDEX: ENTRY`` (or that the log is empty)."""
        entries = list(self.execution_log)
        if not entries:
            print(f"The log of task {self._name} is empty!")
        else:
            print(f"Log of Task {self._name}:")
        for index, entry in enumerate(entries):
            print(f"{index}: {entry}")

    def cleanup(self) -> None:
        """Remove local resources of the task (its log file)."""
        path = self._log_file_path
        if path:
            log_files.flush()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def execute(self, connection: Any, debug: bool = False) -> RuntimeTask:
        """Execute the task standalone, synchronously; returns the task (lazycluster
        returned None, though its own example writes ``task = my_task.execute(...)``).

        Args:
            connection: a :class:`~actorcluster.Runtime` (steps run in its working
                directory), a host name, or a fabric ``Connection`` (the host name it
                was given, its ``user``, ``port``, ``connect_timeout``,
                ``connect_kwargs`` and the ssh_config file it reads are used). For the
                latter two a runtime is started for this execution and cleaned up
                afterwards; as with lazycluster, steps run in the login's home
                directory, and what they leave there stays.
            debug: print the host's output live.

        Raises:
            TaskExecutionError: a step failed.
            InvalidRuntimeError: the host cannot be reached; an unknown host name is an
                :class:`UnknownHostError`, also a ``ValueError`` (lazycluster's error).
            ValueError: ``connection`` is none of the above.
        """
        from actorcluster.runtimes.runtime import Runtime

        if isinstance(connection, Runtime):
            return connection.execute_task(self, execute_async=False, debug=debug)
        host, kwargs = connection_target(connection)
        with Runtime(host, working_dir=HOME, connection_kwargs=kwargs) as runtime:
            return runtime.execute_task(self, execute_async=False, debug=debug)

    # --- execution (used by Runtime) ------------------------------------------------

    def _begin(
        self,
        host: str,
        future: ActorFuture[Any],
        control: TaskControl | None,
        debug: bool,
        sink: Callable[[str], None] | None = None,
    ) -> None:
        """Reset the results for a new execution on ``host``; ``sink`` gets its output
        as it arrives."""
        with self._lock:
            self._log = ExecutionLog()
            self._returns = []
        self._host, self._future, self._control, self._debug = host, future, control, debug
        self._sink = sink
        self._process = None
        with self._lock:
            self._log_file_path = log_files.log_file_path(host, self._name)
            self._log_file_pending = []

    def _log_step(self, index: int) -> None:
        """Queue step ``index``'s entry for the log file; until a step prints, silent
        steps' entries wait for one that does or for the path to be asked for
        (creating a file costs more than a silent task's whole run)."""
        pieces = self._log.pieces(index)
        with self._lock:
            if self._log_file_pending is not None and not any(pieces):
                self._log_file_pending.append(index)
                return
            self._write_pending_log_entries()
            self._log_file_pending = None
            if self._log_file_path is not None:
                log_files.write_entry(self._log_file_path, index, pieces)

    def _write_pending_log_entries(self) -> bool:
        """Queue the silent steps' entries held back so far (under ``_lock``); whether
        there were any."""
        pending, path = self._log_file_pending, self._log_file_path
        if not pending or path is None:
            return False
        self._log_file_pending = None
        for index in pending:
            log_files.write_entry(path, index, [])
        return True

    def _not_started(self, host: str, error: BaseException) -> None:
        """Record an execution on ``host`` that could not start: its future fails with
        ``error`` (a group's other hosts carry on)."""
        future: ActorFuture[Any] = ActorFuture()
        future.fail(error)
        self._begin(host, future, None, debug=False)

    def _apply(self, event: TaskEvent) -> None:
        """Fold one event into the log, the log file and the returns (on the task's
        actor thread: the user's callbacks run here, never on an I/O thread)."""
        match event:
            case StepStarted():
                self._log.start_step()
            case StepOutput(index=index, text=text):
                self._log.add(index, text)
                if self._sink is not None:
                    self._sink(text)
                if self._debug:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            case TransferProgress(index=index, done=done, total=total):
                callback = self._progress.get(index)
                if callback is not None:
                    callback(done, total)
            case FunctionReturned(value=value):
                with self._lock:
                    self._returns.append(value)
            case StepFinished(index=index):
                self._log_step(index)
            case TaskFinished():
                pass
