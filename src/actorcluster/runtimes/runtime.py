"""Runtime: one host, as lazycluster's ``Runtime`` API, on the actor engine.

The facade holds no connection itself. Its :class:`~actorcluster.runtimes.handle.RuntimeHandle`
runs the runtime's supervision subtree (connection, agent, tasks, tunnels) and offers
the operations on it; the facade adds lazycluster's bookkeeping: the tasks run here
(:class:`~actorcluster.runtimes.ledger.TaskLedger`), its "processes"
(:class:`~actorcluster.runtimes.processes.ProcessTable`) and the host's facts
(:class:`~actorcluster.runtimes.host.HostInfo`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from actorcluster._aio import settle
from actorcluster._logging import get_logger
from actorcluster.actors import LOCALHOST, TaskRun
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.futures import ActorFuture
from actorcluster.observe import bus as observe
from actorcluster.observe.hooks import observe_task
from actorcluster.runtimes import log_files
from actorcluster.runtimes import processes as process_keys
from actorcluster.runtimes.environment import checked_env
from actorcluster.runtimes.handle import START_TIMEOUT, RuntimeHandle
from actorcluster.runtimes.host import HostInfo
from actorcluster.runtimes.interrupt import wait_interruptibly
from actorcluster.runtimes.ledger import TaskLedger
from actorcluster.runtimes.options import build_options
from actorcluster.runtimes.paths import needs_expansion
from actorcluster.runtimes.ports import check_port
from actorcluster.runtimes.processes import ProcessTable, TaskProcess, task_key
from actorcluster.runtimes.retries import start_with_retries
from actorcluster.runtimes.supervised import (
    DEFAULT_BACKOFF,
    SupervisedProcess,
    supervise,
    wait_first_run,
)
from actorcluster.runtimes.task import ProgressCallback, RuntimeTask, TaskFuture
from actorcluster.runtimes.tunnels import expose
from actorcluster.steps import TaskControl
from actorcluster.tunnels import FROM_RUNTIME, LOOPBACK, TO_RUNTIME

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Mapping

    import pykka

    from actorcluster.runtimes.processes import ProcessHandle
    from actorcluster.supervisors import Backoff

__all__ = ["ConnectedRuntimes", "Runtime"]

log = get_logger(__name__)


def _split_working_dir(working_dir: str | None) -> tuple[str | None, str | None]:
    """(what the runtime starts in, what it moves to once up): a working dir with a
    ``$VAR`` is expanded with the host's environment, so it is entered after the start."""
    if isinstance(working_dir, str) and needs_expansion(working_dir):
        return None, working_dir
    return working_dir, None


@dataclass(frozen=True, slots=True)
class ConnectedRuntimes:
    """What :meth:`Runtime.connect_many` connected, and what it could not."""

    runtimes: dict[str, Runtime]
    """The runtimes that came up, by host."""
    errors: dict[str, ActorClusterError]
    """Why each other host did not come up, by host."""


class Runtime:
    """A host that runs tasks, functions, transfers and tunnels.

    Args:
        host: a host name from ``~/.ssh/config`` (or the file named by
            ``connection_kwargs["ssh_config_path"]`` or ``$ACTORCLUSTER_SSH_CONFIG``), a
            plain host name, or ``"localhost"`` (the agent runs as a local subprocess:
            no sshd needed).
        working_dir: the working directory on the host, created with its parents and
            kept (``~`` and ``$VAR`` expanded as the shell would, see
            :meth:`create_dir`); None: a temporary one (mode 0700), removed at
            :meth:`cleanup`, at interpreter exit, and by the agent if this process
            vanishes.
        connection_kwargs: as lazycluster's, paramiko ``connect()``'s arguments
            (``key_filename``, ``password``, ``passphrase``, ``pkey``, ``look_for_keys``,
            ``allow_agent``, ``timeout``, ...); also fabric ``Connection``'s (``user``,
            ``port``, ``connect_timeout``, ``connect_kwargs``, ``gateway``), and
            ``ssh_config_path``, ``known_hosts``, ``accept_new_host_keys`` and the
            runtime's own (``python``, ``shell``, ``heartbeat_interval``, ...).
        supervisor: the supervisor to run under; None: the library's root tree.
        retain_tasks: keep at most this many finished tasks (their logs and return
            values) for :attr:`function_returns`, :meth:`execution_log` and
            :meth:`print_log`; None (lazycluster's behaviour) keeps every task until
            :meth:`clear_tasks`. A service running millions of tasks sets a bound.
        keeper: use the user's connection keeper (the command line's, see ``actorcluster
            keeper``) for the SSH connection: a short script skips the connect, and the
            keeper keeps the connection for the next one. Host keys and ssh_config are
            checked by the keeper, with the same code; where no keeper can be used
            (``ACTORCLUSTER_KEEPER=0``, no private runtime folder, it would not start)
            the runtime connects directly. Ignored for ``localhost``.

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

    def __init__(
        self,
        host: str,
        working_dir: str | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        *,
        supervisor: pykka.ActorRef[Any] | None = None,
        retain_tasks: int | None = None,
        keeper: bool = False,
    ) -> None:
        ledger = TaskLedger(retain_tasks)
        start_in, move_to = _split_working_dir(working_dir)
        options = build_options(host, start_in, connection_kwargs, keeper=keeper)
        handle = RuntimeHandle(options, supervisor)
        handle.start()
        self._attach(handle, ledger)
        self._move_to(move_to)

    def _move_to(self, working_dir: str | None) -> None:
        """Enter the (expanded) working directory ``working_dir``, if one; a failure
        cleans the runtime up before it is raised."""
        if working_dir is None:
            return
        try:
            self.working_dir = working_dir
        except BaseException:
            self.cleanup()
            raise

    def _attach(self, handle: RuntimeHandle, ledger: TaskLedger) -> None:
        """Become the facade of ``handle``'s runtime, which is up."""
        self._handle = handle
        self._tasks = ledger
        self._processes = ProcessTable(handle.host)
        ledger.on_drop(self._forget_process)
        self._host_info = HostInfo(handle)
        self._env: dict[str, str] = {self.WORKING_DIR_ENV_VAR_NAME: handle.working_dir}
        log.info("runtime.started", host=handle.host, working_dir=handle.working_dir)

    def _forget_process(self, task: RuntimeTask) -> None:
        """A finished task left the ledger (``retain_tasks``): its process entry goes
        too, so a service's memory stays flat."""
        if task._process is not None:
            self._processes.discard(task._process)

    @classmethod
    def _over(cls, handle: RuntimeHandle, ledger: TaskLedger) -> Runtime:
        """A facade over a runtime that is already up (groups, ``connect_many``)."""
        runtime = cls.__new__(cls)
        runtime._attach(handle, ledger)
        return runtime

    @classmethod
    def from_handle(
        cls,
        handle: RuntimeHandle,
        *,
        retain_tasks: int | None = None,
        working_dir: str | None = None,
    ) -> Runtime:
        """The facade over a runtime whose handle has started (a group connects its
        hosts as handles, then wraps each one that came up).

        Args:
            handle: a started handle (:meth:`RuntimeHandle.wait_started` returned).
            retain_tasks: as ``Runtime(...)``'s.
            working_dir: a directory to enter now (a ``$VAR`` one is expanded on the
                host); None: stay in the handle's.

        Raises:
            PathCreationError: ``working_dir`` could not be created (the runtime is
                cleaned up first).
        """
        runtime = cls._over(handle, TaskLedger(retain_tasks))
        runtime._move_to(working_dir)
        return runtime

    @classmethod
    async def connect(
        cls,
        host: str,
        working_dir: str | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        *,
        supervisor: pykka.ActorRef[Any] | None = None,
        retain_tasks: int | None = None,
        keeper: bool = False,
    ) -> Runtime:
        """Create a runtime from asyncio without blocking the event loop (the same
        arguments and errors as ``Runtime(...)``)::

            async with await Runtime.connect("host-1") as runtime:
                task = await runtime.execute_task(RuntimeTask().run_command("hostname"))

        Cancelling the awaiting coroutine abandons the connect: nothing is left.
        """
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        options = build_options(host, working_dir, connection_kwargs, keeper=keeper)
        handle = RuntimeHandle(options, supervisor)
        # Cancelled while the subtree starts: wait for the start, then stop it.
        await settle(asyncio.to_thread(handle.start_async), undo=lambda _: handle.stop())
        await handle.started()
        return cls._over(handle, TaskLedger(retain_tasks))

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.acleanup()

    async def acleanup(self) -> None:
        """:meth:`cleanup` from asyncio, without blocking the event loop."""
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        await asyncio.to_thread(self.cleanup)

    @classmethod
    def connect_many(
        cls,
        hosts: Iterable[str],
        working_dir: str | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        *,
        supervisor: pykka.ActorRef[Any] | None = None,
        retain_tasks: int | None = None,
        timeout: float = START_TIMEOUT,
        keeper: bool = False,
    ) -> ConnectedRuntimes:
        """Connect to many hosts at once (each with the same arguments as ``Runtime``).

        Every host connects in parallel; one that fails does not hold the others up.

        Returns:
            The runtimes that came up, and a typed error (naming its host) for each
            host that did not, both by host, in the order given.
        """
        started: dict[str, RuntimeHandle] = {}
        errors: dict[str, ActorClusterError] = {}
        start_in, move_to = _split_working_dir(working_dir)
        for host in dict.fromkeys(hosts):
            try:
                options = build_options(host, start_in, connection_kwargs, keeper=keeper)
                handle = RuntimeHandle(options, supervisor)
                handle.start_async()
            except ActorClusterError as error:
                errors[host] = error
            else:
                started[host] = handle
        deadline = time.monotonic() + timeout
        runtimes: dict[str, Runtime] = {}
        for host, handle in started.items():
            try:
                handle.wait_started(max(0.0, deadline - time.monotonic()))
                runtime = cls.from_handle(handle, retain_tasks=retain_tasks, working_dir=move_to)
            except ActorClusterError as error:
                errors[host] = error
            else:
                runtimes[host] = runtime
        return ConnectedRuntimes(runtimes=runtimes, errors=errors)

    def __repr__(self) -> str:
        return f"<Runtime {self.host} {self._state()}>"

    def _state(self) -> str:
        return self._handle.state

    def __str__(self) -> str:
        return f"{self.class_name}: {self.host}"

    def _repr_html_(self) -> str:
        """A notebook's view: host, state, working dir, tasks, tunnels and facts."""
        from actorcluster.runtimes.reprs import runtime_html

        return runtime_html(self)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # --- basic properties -----------------------------------------------------------

    @property
    def host(self) -> str:
        """The host of the runtime."""
        return self._handle.host

    @property
    def handle(self) -> RuntimeHandle:
        """The runtime's engine: what groups, clusters and tools use to reach it (start
        a task message, open a tunnel, start a supervised process, read its state and
        events, ask the host through the agent client). See
        :class:`~actorcluster.runtimes.RuntimeHandle`."""
        return self._handle

    def events(self, maxsize: int = observe.DEFAULT_BUFFER) -> observe.Subscription:
        """A subscription to this runtime's events (see :mod:`actorcluster.observe`)."""
        return self._handle.events(maxsize)

    @property
    def class_name(self) -> str:
        """The class name as string."""
        return self.__class__.__name__

    @property
    def working_dir(self) -> str:
        """The working directory on the host (also in ``$WORKING_DIR`` there)."""
        return self._handle.working_dir

    @working_dir.setter
    def working_dir(self, working_dir: str) -> None:
        path = self.create_dir(working_dir)
        context = self._handle.context
        context.working_dir, context.temporary_working_dir = path, False
        self._env[self.WORKING_DIR_ENV_VAR_NAME] = path

    @property
    def env_variables(self) -> dict[str, str]:
        """Environment variables for every command and function run on the runtime."""
        return self._env

    @env_variables.setter
    def env_variables(self, env_variables: dict[str, str]) -> None:
        env = checked_env(env_variables)
        env.setdefault(self.WORKING_DIR_ENV_VAR_NAME, self.working_dir)
        self._env = env

    def add_env_variables(self, env_variables: dict[str, Any]) -> None:
        """Add or update environment variables (values arrive on the host literally)."""
        if not isinstance(env_variables, dict):
            raise UsageError(f"env_variables must be a dict, not {type(env_variables).__name__}")
        self._env.update(checked_env({**self._env, **env_variables}))

    @property
    def is_connected(self) -> bool:
        """Whether the runtime's agent is up right now (False while reconnecting)."""
        return self._handle.context.ready

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the agent is up (e.g. after a reconnect).

        Raises:
            HostUnreachableError: not ready within ``timeout``.
        """
        self._handle.client(timeout)

    # --- tasks ----------------------------------------------------------------------

    @overload
    def execute_task(
        self,
        task: RuntimeTask,
        execute_async: Literal[True] = ...,
        omit_on_join: bool = ...,
        debug: bool = ...,
    ) -> ActorFuture[RuntimeTask]: ...

    @overload
    def execute_task(
        self,
        task: RuntimeTask,
        execute_async: Literal[False] | None,
        omit_on_join: bool = ...,
        debug: bool = ...,
    ) -> RuntimeTask: ...

    @overload
    def execute_task(
        self,
        task: RuntimeTask,
        execute_async: bool | None,
        omit_on_join: bool = ...,
        debug: bool = ...,
    ) -> ActorFuture[RuntimeTask] | RuntimeTask: ...

    def execute_task(
        self,
        task: RuntimeTask,
        execute_async: bool | None = True,
        omit_on_join: bool = False,
        debug: bool = False,
        *,
        on_output: Callable[[str], None] | None = None,
    ) -> ActorFuture[RuntimeTask] | RuntimeTask:
        """Execute a task on the runtime.

        Args:
            task: the task.
            execute_async: True: return at once with a future; False: wait and raise.
            omit_on_join: :meth:`join` does not wait for this task.
            debug: print the host's output live.
            on_output: called with the host's output (stdout and stderr) as it arrives,
                on the task's actor: keep it short.

        Returns:
            The execution's future (resolved with the task) when asynchronous; the task
            itself when synchronous (lazycluster returned None, though its README
            writes ``task = runtime.execute_task(task, execute_async=False)``).

        Raises:
            TaskExecutionError: (synchronous) a step failed; names the step.
            HostUnreachableError: the host is down and did not come back in time.
        """
        future = self.submit(
            task,
            as_process=bool(execute_async),
            omit_on_join=omit_on_join,
            debug=debug,
            on_output=on_output,
        )
        if execute_async:
            return future
        wait_interruptibly(future, task)
        log_files.flush()  # a synchronous run returns with its log file written
        return task

    def submit(
        self,
        task: RuntimeTask,
        *,
        as_process: bool = True,
        omit_on_join: bool = False,
        debug: bool = False,
        on_output: Callable[[str], None] | None = None,
        choose: Callable[[Runtime], Runtime] | None = None,
    ) -> ActorFuture[RuntimeTask]:
        """Start ``task`` without waiting and record it; its future tells how it ended.
        What :meth:`execute_task` does before it waits, and how a group starts tasks.

        Args:
            task: the task to run.
            as_process: list it among the runtime's processes too (lazycluster's
                asynchronous tasks are).
            omit_on_join: as :meth:`execute_task`'s.
            debug: print its output here as it arrives.
            on_output: called with each piece of its output (on the task's actor).
            choose: where each retry (``task.retries``) runs, given the runtime of the
                failed attempt (a group's failover); None: here.

        Raises:
            UsageError: a bad argument, or the runtime was cleaned up.
            HostUnreachableError: the runtime kept reconnecting.
        """
        if not isinstance(task, RuntimeTask):
            raise UsageError(f"task must be a RuntimeTask, not {type(task).__name__}")
        if on_output is not None and not callable(on_output):
            raise UsageError(f"on_output must be callable, not {type(on_output).__name__}")
        future = self._start_task(task, debug, on_output, choose)
        if as_process:  # lazycluster's "processes" are the asynchronous tasks
            task.omit_on_join = omit_on_join
            task._process = TaskProcess(task_key(self.host, task.name), task)
            self._processes.add(task._process)
        # After its process: a task that ended already (retain_tasks) drops it with it.
        self._tasks.add(task)
        return future

    def _start_task(
        self,
        task: RuntimeTask,
        debug: bool,
        on_output: Callable[[str], None] | None,
        choose: Callable[[Runtime], Runtime] | None = None,
    ) -> ActorFuture[RuntimeTask]:
        """Start ``task`` here (with ``task.retries``: each retry where ``choose`` says,
        see :mod:`~actorcluster.runtimes.retries`)."""
        if not task.retries:
            return self._attempt(task, debug, on_output, None)
        outer: ActorFuture[RuntimeTask] = TaskFuture(task, f"task {task.name!r}")

        def start(runtime: Runtime) -> ActorFuture[Any]:
            return runtime._attempt(task, debug, on_output, outer)

        return start_with_retries(task, self, outer, start, choose)

    def _attempt(
        self,
        task: RuntimeTask,
        debug: bool,
        on_output: Callable[[str], None] | None,
        outer: ActorFuture[RuntimeTask] | None,
    ) -> ActorFuture[RuntimeTask]:
        """Start one execution of ``task``; its future (the task's own, unless
        ``outer``, the future of all its attempts, is given)."""
        self._handle.check_running()
        env = {**self._env, **task.env_variables}
        message = task.build(env)
        task.env_variables = env
        what = f"task {task.name!r} on {self.host}"
        future: ActorFuture[RuntimeTask] = (
            TaskFuture(task, what) if outer is None else ActorFuture(what)
        )
        control = TaskControl(task.name, self.host)
        if outer is None:
            future.set_canceller(lambda: control.cancel("cancelled through its future"))
        task._begin(self.host, outer or future, control, debug, on_output)
        emit = observe_task(self.host, message, future, task._apply)
        run = TaskRun(task=message, future=future, result=task, control=control, emit=emit)
        try:
            self._handle.start_task(run)
        except Exception as exc:
            future.fail(exc)  # whoever holds the task sees why, not a future that never ends
            raise
        return future

    def execute_function(
        self,
        function: Callable[..., Any],
        execute_async: bool = False,
        debug: bool = False,
        *,
        isolated: bool = False,
        **func_kwargs: Any,
    ) -> RuntimeTask:
        """Run ``function(**func_kwargs)`` on the runtime; returns the task.

        The return value is in ``task.function_returns`` and :attr:`function_returns`.

        By default the function runs on a thread of the host's agent: cheap (no new
        process), but its environment variables and working directory are applied
        process-wide while it runs (calls at the same time see each other's), only
        its Python prints come back, and a cancel is best effort (it takes effect when
        the function runs Python code, not inside a blocking call). ``isolated=True``
        runs it in a child process of the agent instead (a fork: the agent's imports
        come along): its own environment and working directory, everything it prints
        (file descriptors 1 and 2 too), and a cancel that kills it with whatever it
        started.

        Raises:
            ValueError: ``function`` is not callable or cannot be pickled.
            TaskExecutionError: (synchronous) the function raised on the host; the
                error carries the remote type and traceback.
        """
        name = getattr(function, "__name__", None) or type(function).__name__
        task = RuntimeTask(f"execute-function-{name}")
        task.run_function(function, **func_kwargs)
        if isolated:
            task._isolate_last_step()
        self.execute_task(task, execute_async=execute_async, debug=debug)
        return task

    def send_file(
        self,
        local_path: str,
        remote_path: str | None = None,
        execute_async: bool | None = False,
        *,
        progress: ProgressCallback | None = None,
        preserve_special_bits: bool = False,
    ) -> RuntimeTask:
        """Send a file or folder to the runtime (see :meth:`RuntimeTask.send_file`)."""
        task = RuntimeTask(f"send-file-{local_path}-to-{self.host}")
        task.send_file(
            local_path, remote_path, progress=progress, preserve_special_bits=preserve_special_bits
        )
        self.execute_task(task, execute_async=execute_async)
        return task

    def get_file(
        self,
        remote_path: str,
        local_path: str | None = None,
        execute_async: bool | None = False,
        *,
        progress: ProgressCallback | None = None,
        preserve_special_bits: bool = False,
    ) -> RuntimeTask:
        """Fetch a file or folder from the runtime (see :meth:`RuntimeTask.get_file`)."""
        task = RuntimeTask(f"get-file-{remote_path}-from-{self.host}")
        task.get_file(
            remote_path, local_path, progress=progress, preserve_special_bits=preserve_special_bits
        )
        self.execute_task(task, execute_async=execute_async)
        return task

    @property
    def function_returns(self) -> Generator[object, None, None]:
        """Return values of all functions run here, in the order the tasks started
        (waiting for tasks still running)."""
        return self._tasks.function_returns()

    def execution_log(self, task_name: str) -> list[str]:
        """The execution log of the latest task of that name run here.

        Raises:
            ValueError: no task of that name was executed on this runtime.
        """
        task = self._tasks.latest(task_name)
        if task is None:
            raise UsageError(f"no task named {task_name!r} was executed on runtime {self.host}")
        return task.execution_log

    def print_log(self) -> None:
        """Print the execution log of every task run here (each as
        :meth:`RuntimeTask.print_log` does), in the order they started."""
        for task in self._tasks.tasks():
            task.print_log()

    def join(self) -> None:
        """Wait until every task started here (except omit_on_join ones) ended."""
        self._tasks.join()

    def clear_tasks(self) -> None:
        """Forget every task (their logs, returns and processes, as lazycluster does);
        running ones keep running, and :meth:`cleanup` still stops them."""
        self._tasks.clear()
        self._processes.forget_tasks()

    # --- the host -------------------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        """Facts about the host, read once and cached: lazycluster's host, os,
        cpu_cores, memory, python_version, gpus (names), workspace_version; and
        hostname, architecture, gpu_details."""
        return self._host_info.facts()

    @property
    def os(self) -> str:
        """The operating system."""
        return str(self.info["os"])

    @property
    def cpu_cores(self) -> int:
        """CPU cores available: the container's CPU quota when one is set."""
        return int(self.info["cpu_cores"])

    @property
    def memory(self) -> int:
        """Total memory in bytes: the container's memory limit when one is set."""
        return int(self.info["memory"])

    @property
    def memory_in_mb(self) -> int:
        """Total memory in megabytes."""
        return self._host_info.memory_in_mb()

    @property
    def python_version(self) -> str:
        """The agent's Python version on the host."""
        return str(self.info["python_version"])

    @property
    def gpus(self) -> list[str]:
        """The name of each GPU (from nvidia-smi), as lazycluster gives them; empty
        without NVIDIA GPUs."""
        return self._host_info.gpus()

    @property
    def gpu_details(self) -> list[dict[str, Any]]:
        """One dict per GPU: index, name, memory (bytes), driver_version, uuid."""
        return self._host_info.gpu_details()

    @property
    def gpu_count(self) -> int:
        """The number of GPUs."""
        return len(self.gpus)

    def print_info(self) -> None:
        """Print the host facts as a table."""
        self._host_info.print_info(self.class_name)

    def check_filter(
        self,
        gpu_required: bool = False,
        min_memory: int | None = None,
        min_cpu_cores: int | None = None,
        installed_executables: str | list[str] | None = None,
        filter_commands: str | list[str] | None = None,
    ) -> bool:
        """Whether the host meets every given criterion.

        Args:
            gpu_required: at least one GPU.
            min_memory: at least this many MB of memory.
            min_cpu_cores: at least this many CPU cores.
            installed_executables: each must be found on the host's PATH.
            filter_commands: each shell command must print ``true`` (surrounding
                whitespace and case ignored).
        """
        return self._host_info.check_filter(
            self._env,
            gpu_required=gpu_required,
            min_memory=min_memory,
            min_cpu_cores=min_cpu_cores,
            installed_executables=installed_executables,
            filter_commands=filter_commands,
        )

    def create_dir(self, path: str) -> str:
        """Create a directory with all its parents; returns its absolute path.

        ``~`` and ``$VAR``/``${VAR}`` are expanded as the shell would, with the
        runtime's environment on the host; everything else is literal (spaces, quotes,
        ``$(...)``, backticks: nothing is executed). A relative path is relative to the
        working directory.

        Raises:
            PathCreationError: it could not be created (names the path and why).
            UsageError: a variable in it is not set on the host.
        """
        return self._host_info.create_dir(path, self._env)

    def delete_dir(self, path: str) -> bool:
        """Delete a directory recursively (the path expanded as for :meth:`create_dir`);
        False if anything could not be removed."""
        return self._host_info.delete_dir(path, self._env)

    def create_tempdir(self) -> str:
        """Create a temporary directory on the host and return its path (not removed
        automatically)."""
        return self._host_info.create_tempdir()

    def echo(self, msg: str) -> str:
        """Run ``echo MSG`` through the host's shell, in the working directory and the
        runtime's environment, and return what it printed: ``msg`` is shell text, as a
        command's (``echo("$WORKING_DIR")`` prints the working directory)."""
        return self._host_info.stdout_of(f"echo {msg}", self._env)

    def has_free_port(self, port: int) -> bool:
        """Whether ``port`` is free on the host: a server could listen on it now (bound
        with SO_REUSEADDR, as servers bind: a port with connections lingering in
        TIME_WAIT is free; one listened on, or bound by a socket that does not share
        it, is not).

        Raises:
            ValueError: the port is not in 1..65535 (an int, or a string of one).
        """
        return self._host_info.has_free_port(port)

    def get_free_port(self, ports: list[int]) -> int:
        """The first free port of ``ports`` on the host (all checked in one request).

        Raises:
            NoPortsLeftError: none is free, or the list is empty.
        """
        return self._host_info.get_free_port(ports)

    def is_valid_runtime(self) -> bool:
        """Whether the host answers and runs a suitable Python (the agent is up)."""
        try:
            self._handle.client().ping().result(60.0)
        except ActorClusterError:
            return False
        return True

    # --- ports exposed ----------------------------------------------------------------

    def expose_port_from_runtime(
        self,
        runtime_port: int,
        local_port: int | None = None,
        *,
        bind_address: str = LOOPBACK,
        carrier: str | None = None,
    ) -> str:
        """Expose a port of the runtime here: connections to ``local_port`` here reach
        ``runtime_port`` on the host's loopback (local port forwarding, ``ssh -L``).

        Args:
            runtime_port: the port on the runtime.
            local_port: the port here; defaults to ``runtime_port``.
            bind_address: the address the listener here binds to.
            carrier: None (the default: an ``ssh -N -L`` process where OpenSSH's client
                can log in as the runtime does, else the runtime's own connection),
                ``"openssh"`` or ``"paramiko"`` (the runtime's own connection: no login
                per tunnel).

        Returns:
            The process key, for :meth:`stop_process`; ``""`` on ``localhost`` when
            both ports are the same (a port exposed to itself: nothing to do).

        Raises:
            UsageError: a port is not an int in 1..65535, or a bad carrier.
            PortInUseError: ``local_port`` is taken here (side ``"local"``).
        """
        runtime_port = check_port(runtime_port, "runtime_port")
        local = runtime_port if local_port is None else check_port(local_port, "local_port")
        if self._exposed_to_itself(local, runtime_port):
            return ""
        process = expose(
            self._handle,
            FROM_RUNTIME,
            local,
            runtime_port,
            bind_address=bind_address,
            carrier=carrier,
            runtime=self,
        )
        self._processes.add(process)
        return process.key

    def _exposed_to_itself(self, here: int, there: int) -> bool:
        """Whether a port would be exposed to itself (``localhost``, the same port):
        nothing to do."""
        return here == there and self._handle.is_local

    def expose_port_to_runtime(
        self,
        local_port: int,
        runtime_port: int | None = None,
        *,
        bind_address: str = LOOPBACK,
        carrier: str | None = None,
    ) -> str:
        """Expose a port here to the runtime: connections to ``runtime_port`` on the host
        reach ``local_port`` on loopback here (remote port forwarding, ``ssh -R``).

        Args:
            local_port: the port here.
            runtime_port: the port on the runtime; defaults to ``local_port``.
            bind_address: the address the listener on the host binds to.
            carrier: None (the default: an ``ssh -N -R`` process where OpenSSH's client
                can log in as the runtime does, else the runtime's own connection),
                ``"openssh"`` or ``"paramiko"``.

        Returns:
            The process key, for :meth:`stop_process`; ``""`` on ``localhost`` when
            both ports are the same (a port exposed to itself: nothing to do).

        Raises:
            UsageError: a port is not an int in 1..65535, or a bad carrier.
            PortInUseError: ``runtime_port`` is taken on the host (side: the host).
            RemoteError: the host refused to forward for another reason.
        """
        local_port = check_port(local_port, "local_port")
        remote = local_port if runtime_port is None else check_port(runtime_port, "runtime_port")
        if self._exposed_to_itself(local_port, remote):
            return ""
        process = expose(
            self._handle,
            TO_RUNTIME,
            local_port,
            remote,
            bind_address=bind_address,
            carrier=carrier,
            runtime=self,
        )
        self._processes.add(process)
        return process.key

    # --- processes ------------------------------------------------------------------

    @classmethod
    def is_runtime_task_process(cls, process_key: str) -> bool:
        """Whether the key belongs to a task execution."""
        return process_keys.is_task_key(process_key)

    @classmethod
    def is_port_exposure_process(cls, process_key: str) -> bool:
        """Whether the key belongs to a port exposure (a tunnel)."""
        return process_keys.is_port_exposure_key(process_key)

    def get_process(self, key: str) -> ProcessHandle:
        """The process with that key.

        Raises:
            ValueError: unknown key (an :class:`UnknownProcessKeyError`).
        """
        return self._processes.get(key)

    def get_processes(self, only_alive: bool = False) -> dict[str, ProcessHandle]:
        """All processes by key, or only the alive ones."""
        return self._processes.all(only_alive)

    def stop_process(self, key: str) -> None:
        """Stop the process with that key.

        Raises:
            ValueError: unknown key (an :class:`UnknownProcessKeyError`).
        """
        self._processes.get(key).terminate()

    @property
    def task_processes(self) -> list[ProcessHandle]:
        """The processes of tasks."""
        return [h for k, h in self._processes.all().items() if process_keys.is_task_key(k)]

    @property
    def alive_process_count(self) -> int:
        """How many processes are alive."""
        return len(self._processes.all(only_alive=True))

    @property
    def alive_task_process_count(self) -> int:
        """How many task processes are alive."""
        return sum(1 for handle in self.task_processes if handle.is_alive())

    def supervise(
        self,
        command: str,
        *,
        restart: str = "permanent",
        max_restarts: int | None = 5,
        period: float = 60.0,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        backoff: Backoff | None = DEFAULT_BACKOFF,
    ) -> SupervisedProcess:
        """Keep a long-running ``command`` alive on the host, in this runtime's
        subtree: restarted by ``restart`` (``"permanent"``, ``"transient"``: after a
        failure only, ``"temporary"``: never), with ``backoff``, at most
        ``max_restarts`` times in ``period`` seconds (None: forever, with a capped
        exponential backoff). While the host is away it waits (``waiting for host``)
        and is re-adopted or started again when the host is back, never counted toward
        the intensity. Listed among the processes (``<host>::process::<name>``);
        stopped at :meth:`cleanup` and with the runtime's supervision tree. Returns at
        once; ``wait_running()`` waits for its pid. See ``docs/guide/processes.md``.

        Raises:
            UsageError: a bad argument, or a process of that name is supervised already.
        """
        process = supervise(
            self._handle,
            command,
            env={**self._env, **(env or {})},
            name=name,
            restart=restart,
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
        )
        self._processes.add(process)
        return process

    async def supervise_async(
        self,
        command: str,
        *,
        wait_running: bool = True,
        timeout: float = 60.0,
        restart: str = "permanent",
        max_restarts: int | None = 5,
        period: float = 60.0,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        backoff: Backoff | None = DEFAULT_BACKOFF,
    ) -> SupervisedProcess:
        """:meth:`supervise`, then (``wait_running``) await its first run with its pid
        known, without blocking the event loop. Cancelled, or not running within
        ``timeout``, the process is stopped before the error propagates.

        Raises:
            UsageError: as :meth:`supervise`.
            FutureTimeoutError: it did not run within ``timeout``.
            SupervisorGaveUpError: it failed before it ran.
        """
        process = self.supervise(
            command,
            restart=restart,
            max_restarts=max_restarts,
            period=period,
            name=name,
            env=env,
            backoff=backoff,
        )
        try:
            await wait_first_run(process, wait_running=wait_running, timeout=timeout)
        except BaseException:
            self._processes.discard(process)
            raise
        return process

    # --- lifecycle ------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop every task and tunnel, stop the agent (which kills what it started and
        removes the temporary working directory), and close the connection."""
        if self._handle.stopped:
            return
        self._processes.stop_all()
        self._handle.stop()
        log.info("runtime.stopped", host=self.host)
