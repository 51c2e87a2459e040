"""Runtime: one host, as lazycluster's ``Runtime`` API, on the actor engine.

The facade holds no connection itself: it starts the runtime's supervision subtree
under the root tree (connection, agent, tasks, tunnels) and talks to it through the
runtime's :class:`~actorcluster.actors.context.RuntimeContext`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.actors.context import LOCALHOST, RuntimeContext
from actorcluster.actors.runtime_tree import runtime_supervisor_spec
from actorcluster.actors.task import TaskActor, TaskRun
from actorcluster.errors import (
    ActorClusterError,
    HostUnreachableError,
    InvalidRuntimeError,
    UsageError,
)
from actorcluster.futures import ActorFuture
from actorcluster.runtimes.host import RuntimeHostMixin
from actorcluster.runtimes.options import build_options
from actorcluster.runtimes.processes import RuntimeProcessesMixin
from actorcluster.runtimes.task import ProgressCallback, RuntimeTask
from actorcluster.runtimes.tunnels import RuntimeTunnelsMixin
from actorcluster.steps.control import TaskControl
from actorcluster.supervisors import ChildSpec, Restart, root_supervisor

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping

__all__ = ["Runtime"]

log = get_logger(__name__)

_ASK_TIMEOUT = 60.0
_runtime_ids = itertools.count(1)


class Runtime(RuntimeHostMixin, RuntimeProcessesMixin, RuntimeTunnelsMixin):
    """A host that runs tasks, functions, transfers and tunnels.

    Args:
        host: a host name from ``~/.ssh/config`` (or the file named by
            ``connection_kwargs["ssh_config_path"]`` or ``$ACTORCLUSTER_SSH_CONFIG``), a
            plain host name, or ``"localhost"`` (the agent runs as a local subprocess:
            no sshd needed).
        working_dir: the working directory on the host, created with its parents and
            kept; None: a temporary one (mode 0700), removed at :meth:`cleanup`, at
            interpreter exit, and by the agent if this process vanishes.
        connection_kwargs: fabric-style connection settings (``user``, ``port``,
            ``connect_timeout``, ``connect_kwargs``, ``gateway``) plus
            ``ssh_config_path``, ``known_hosts``, ``accept_new_host_keys`` and the
            runtime's own (``python``, ``shell``, ``heartbeat_interval``, ...).
        supervisor: the supervisor to run under; None: the library's root tree.

    Raises:
        InvalidRuntimeError: the host cannot be used (its subclasses say why: unknown
            host, refused, authentication, host key, no suitable python3).
        PathCreationError: ``working_dir`` could not be created.
        ConfigurationError: a connection setting is wrong.
    """

    WORKING_DIR_ENV_VAR_NAME = "WORKING_DIR"
    """The environment variable holding the working directory on the host."""
    LOCALHOST = LOCALHOST
    """The host name of the local runtime."""

    _PORT_TO_RUNTIME = "-R"
    _PORT_FROM_RUNTIME = "-L"
    _PROCESS_KEY_DELIMITER = "::"
    _TASK_PROCESS_KEY_PREFIX = "task"

    def __init__(
        self,
        host: str,
        working_dir: str | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        *,
        supervisor: pykka.ActorRef[Any] | None = None,
    ) -> None:
        options = build_options(host, working_dir, connection_kwargs)
        self._host = host
        self._connection_kwargs = dict(connection_kwargs or {})
        self._context = RuntimeContext(options)
        self._parent = supervisor if supervisor is not None else root_supervisor()
        self._child_id = f"runtime:{host}:{next(_runtime_ids)}"
        self._lock = threading.RLock()
        self._tasks: list[RuntimeTask] = []
        self._task_ids = itertools.count(1)
        self._stopped = False
        self._start_tree()
        assert self._context.working_dir is not None
        self._env: dict[str, str] = {self.WORKING_DIR_ENV_VAR_NAME: self._context.working_dir}
        self._working_dir_is_temp = working_dir is None
        self._init_processes()
        self._init_host_facts()
        log.info("runtime.started", host=host, working_dir=self._context.working_dir)

    def _start_tree(self) -> None:
        spec = runtime_supervisor_spec(self._context, self._child_id)
        try:
            self._parent.proxy().start_child(spec).get(timeout=_ASK_TIMEOUT)
        except InvalidRuntimeError:
            raise
        except ActorClusterError as exc:
            if isinstance(exc, HostUnreachableError):
                raise InvalidRuntimeError(self._host, str(exc)) from exc
            raise

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("ready" if self._context.ready else "reconnecting")
        return f"<Runtime {self._host} {state}>"

    def __str__(self) -> str:
        return f"{self.class_name}: {self._host}"

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # --- basic properties -----------------------------------------------------------

    @property
    def host(self) -> str:
        """The host of the runtime."""
        return self._host

    @property
    def class_name(self) -> str:
        """The class name as string."""
        return self.__class__.__name__

    @property
    def working_dir(self) -> str:
        """The working directory on the host (also in ``$WORKING_DIR`` there)."""
        assert self._context.working_dir is not None
        return self._context.working_dir

    @working_dir.setter
    def working_dir(self, working_dir: str) -> None:
        self.create_dir(working_dir)
        self._context.working_dir = working_dir
        self._context.temporary_working_dir = False
        self._working_dir_is_temp = False
        self._env[self.WORKING_DIR_ENV_VAR_NAME] = working_dir

    @property
    def env_variables(self) -> dict[str, str]:
        """Environment variables for every command and function run on the runtime."""
        return self._env

    @env_variables.setter
    def env_variables(self, env_variables: dict[str, str]) -> None:
        env = {str(key): str(value) for key, value in dict(env_variables).items()}
        env.setdefault(self.WORKING_DIR_ENV_VAR_NAME, self.working_dir)
        self._env = env

    def add_env_variables(self, env_variables: dict[str, Any]) -> None:
        """Add or update environment variables (values arrive on the host literally)."""
        if not isinstance(env_variables, dict):
            raise UsageError(f"env_variables must be a dict, not {type(env_variables).__name__}")
        self._env.update({str(key): str(value) for key, value in env_variables.items()})

    @property
    def is_connected(self) -> bool:
        """Whether the runtime's agent is up right now (False while reconnecting)."""
        return self._context.ready

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the agent is up (e.g. after a reconnect).

        Raises:
            HostUnreachableError: not ready within ``timeout``.
        """
        self._context.agent(timeout)

    # --- tasks ----------------------------------------------------------------------

    def execute_task(
        self,
        task: RuntimeTask,
        execute_async: bool | None = True,
        omit_on_join: bool = False,
        debug: bool = False,
    ) -> ActorFuture[RuntimeTask] | None:
        """Execute a task on the runtime.

        Args:
            task: the task.
            execute_async: True: return at once with a future; False: wait and raise.
            omit_on_join: :meth:`join` does not wait for this task.
            debug: print the host's output live.

        Returns:
            The execution's future (resolved with the task) when asynchronous, else None.

        Raises:
            TaskExecutionError: (synchronous) a step failed; names the step.
            HostUnreachableError: the host is down and did not come back in time.
        """
        if not isinstance(task, RuntimeTask):
            raise UsageError(f"task must be a RuntimeTask, not {type(task).__name__}")
        future = self._start_task(task, debug)
        with self._lock:
            self._tasks.append(task)
        if execute_async:  # lazycluster's "processes" are the asynchronous tasks
            self._register_task_process(task)
            task.omit_on_join = omit_on_join
            return future
        future.get()
        return None

    def _start_task(self, task: RuntimeTask, debug: bool) -> ActorFuture[RuntimeTask]:
        self._check_running()
        message = task.build()
        future: ActorFuture[RuntimeTask] = ActorFuture()
        control = TaskControl(task.name, self._host)
        task._begin(self._host, future, control, debug)
        run = TaskRun(
            task=message,
            env={**self._env, **task.env_variables},
            future=future,
            result=task,
            control=control,
            emit=task._apply,
        )
        context = self._context
        spec = ChildSpec(
            id=f"{task.name}#{next(self._task_ids)}",
            start=lambda: TaskActor.start(context, run),
            restart=Restart.TEMPORARY,
            shutdown_timeout=5.0,
        )
        supervisor = context.task_supervisor_proxy()
        try:
            supervisor.start_child(spec).get(timeout=_ASK_TIMEOUT)
        except pykka.ActorDeadError as exc:
            raise HostUnreachableError(self._host, "the runtime was restarting") from exc
        return future

    def execute_function(
        self,
        function: Callable[..., Any],
        execute_async: bool = False,
        debug: bool = False,
        **func_kwargs: Any,
    ) -> RuntimeTask:
        """Run ``function(**func_kwargs)`` on the runtime; returns the task.

        The return value is in ``task.function_returns`` and :attr:`function_returns`.

        Raises:
            ValueError: ``function`` is not callable or cannot be pickled.
            TaskExecutionError: (synchronous) the function raised on the host; the
                error carries the remote type and traceback.
        """
        name = getattr(function, "__name__", "function")
        task = RuntimeTask(f"execute-function-{name}-{next(self._task_ids)}")
        task.run_function(function, **func_kwargs)
        self.execute_task(task, execute_async=execute_async, debug=debug)
        return task

    def send_file(
        self,
        local_path: str,
        remote_path: str | None = None,
        execute_async: bool | None = False,
        *,
        progress: ProgressCallback | None = None,
    ) -> RuntimeTask:
        """Send a file or folder to the runtime (see :meth:`RuntimeTask.send_file`)."""
        task = RuntimeTask(f"send-file-{next(self._task_ids)}")
        task.send_file(local_path, remote_path, progress=progress)
        self.execute_task(task, execute_async=execute_async)
        return task

    def get_file(
        self,
        remote_path: str,
        local_path: str | None = None,
        execute_async: bool | None = False,
        *,
        progress: ProgressCallback | None = None,
    ) -> RuntimeTask:
        """Fetch a file or folder from the runtime (see :meth:`RuntimeTask.get_file`)."""
        task = RuntimeTask(f"get-file-{next(self._task_ids)}")
        task.get_file(remote_path, local_path, progress=progress)
        self.execute_task(task, execute_async=execute_async)
        return task

    @property
    def function_returns(self) -> Generator[object, None, None]:
        """Return values of all functions run here, in the order the tasks ran."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            yield from task.function_returns

    def execution_log(self, task_name: str) -> list[str]:
        """The execution log of the latest task of that name run here.

        Raises:
            ValueError: no task of that name was executed on this runtime.
        """
        with self._lock:
            for task in reversed(self._tasks):
                if task.name == task_name:
                    return task.execution_log
        raise UsageError(f"no task named {task_name!r} was executed on runtime {self._host}")

    def print_log(self) -> None:
        """Print the execution log of every task run here."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            print(f"--- {task.name} ---")
            task.print_log()

    def join(self) -> None:
        """Wait until every task started here (except omit_on_join ones) ended."""
        with self._lock:
            tasks = [task for task in self._tasks if not task.omit_on_join]
        for task in tasks:
            task.join()

    def clear_tasks(self) -> None:
        """Forget every task (their logs and returns); running ones keep running."""
        with self._lock:
            self._tasks = []
        self._forget_task_processes()

    # --- lifecycle ------------------------------------------------------------------

    def _check_running(self) -> None:
        if self._stopped:
            raise HostUnreachableError(self._host, "the runtime was cleaned up")

    def cleanup(self) -> None:
        """Stop every task and tunnel, stop the agent (which kills what it started and
        removes the temporary working directory), and close the connection."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_all_processes()
        # The tree may already be gone (interpreter exit), or the child with it.
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError):
            self._parent.proxy().terminate_child(self._child_id).get(timeout=_ASK_TIMEOUT)
        self._context.close()
        log.info("runtime.stopped", host=self._host)
