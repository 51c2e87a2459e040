"""What a group runs: tasks, functions and file transfers on one host or on all.

:class:`GroupTasks` is the part of :class:`~actorcluster.groups.RuntimeGroup` that
starts work. A broadcast starts every host's copy before waiting for any (starting a
task never waits), so 20 hosts cost one host's time. A host that cannot start its copy
(stopped, unreachable) fails that copy's future with the error naming it; the others
run. Output of a broadcast is live per host: each copy's ``execution_log`` grows as it
runs, ``on_output(host, text)`` is called as output arrives, and ``debug=True`` prints
it line by line prefixed with ``[host]``.
"""

from __future__ import annotations

import copy
import itertools
import os
import posixpath
import sys
import threading
from typing import TYPE_CHECKING, Any

from actorcluster.errors import ActorClusterError, FileTransferError, UsageError
from actorcluster.groups.fanout import wait_all
from actorcluster.runtimes import RuntimeTask, log_files
from actorcluster.runtimes.interrupt import stop_all
from actorcluster.runtimes.task_ops import isolate_last_step, not_started

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from actorcluster.futures import ActorFuture
    from actorcluster.groups.members import Members
    from actorcluster.runtimes import Runtime
    from actorcluster.runtimes.ledger import TaskLedger
    from actorcluster.runtimes.task import ProgressCallback

__all__ = ["GroupTasks", "HostOutput"]

_names = itertools.count(1)
_print_lock = threading.Lock()


class HostOutput:
    """One host's output of one task: handed to ``on_output(host, text)`` as it comes,
    and (``echo``) printed whole lines at a time, each prefixed with ``[host] ``."""

    def __init__(self, host: str, on_output: Callable[[str, str], None] | None, echo: bool) -> None:
        self.host = host
        self._on_output = on_output
        self._echo = echo
        self._partial = ""

    def __call__(self, text: str) -> None:
        """Take a piece of output (on the task's actor)."""
        if self._on_output is not None:
            self._on_output(self.host, text)
        if self._echo:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            if lines:
                self._print(lines)

    def close(self) -> None:
        """The task ended: print what is left of its last line."""
        if self._echo and self._partial:
            partial, self._partial = self._partial, ""
            self._print([partial])

    def _print(self, lines: list[str]) -> None:
        text = "".join(f"[{self.host}] {line}\n" for line in lines)
        with _print_lock:  # lines of different hosts never mix within a line
            sys.stdout.write(text)
            sys.stdout.flush()


class GroupTasks:
    """Running tasks, functions and transfers on a group's runtimes (a mixin of
    :class:`~actorcluster.groups.RuntimeGroup`, which provides the members and the
    ledger of the tasks started through the group)."""

    _members: Members
    _ledger: TaskLedger

    def execute_task(  # noqa: PLR0917 (lazycluster's signature, positional arguments and all)
        self,
        task: RuntimeTask,
        host: str | None = None,
        broadcast: bool = False,
        execute_async: bool = True,
        omit_on_join: bool = False,
        debug: bool = False,
        *,
        on_output: Callable[[str, str], None] | None = None,
    ) -> RuntimeTask | list[RuntimeTask]:
        """Execute a task on one runtime of the group, or on every one.

        Args:
            task: the task.
            host: the runtime to run on; None: the reachable one with the fewest tasks
                running (a task with ``retries`` is re-sent to another reachable host
                if its host is lost: failover).
            broadcast: run on every runtime: the first gets ``task`` itself, each other
                a copy (``copy.deepcopy``, named ``<name>-<n>`` as in lazycluster).
            execute_async: True: return at once (each task's ``future`` tells how it
                ended); False: wait for all, then raise the first host's error if any.
            omit_on_join: :meth:`join` does not wait for this task.
            debug: print the output live (on a broadcast, each line prefixed ``[host]``).
            on_output: called with ``(host, text)`` as output arrives, on the task's
                actor: keep it short.

        Returns:
            The task, or on a broadcast one task per runtime, in the group's order.

        Raises:
            UsageError: ``host`` is not in the group, both ``host`` and ``broadcast``
                were given, or the group is empty.
            TaskExecutionError: (synchronous) a step failed on a host; on a broadcast
                after every host ended.
        """
        if not isinstance(task, RuntimeTask):
            raise UsageError(f"task must be a RuntimeTask, not {type(task).__name__}")
        if on_output is not None and not callable(on_output):
            raise UsageError(f"on_output must be callable, not {type(on_output).__name__}")
        task.omit_on_join = omit_on_join
        if broadcast:
            if host is not None:
                raise UsageError("give a host or broadcast=True, not both")
            runtimes = self._members.all()
            if not runtimes:
                raise UsageError("the group is empty: add a runtime first")
            task.build()  # a task that cannot run fails here, not on every host
            tasks = [task, *(copy.deepcopy(task) for _ in range(len(runtimes) - 1))]
            by_host = dict(zip(runtimes, tasks, strict=True))
            return self._run_each(by_host, execute_async, debug, on_output)
        runtime = self._members.get(host) if host is not None else self._members.least_busy()
        choose = None if host is not None else self._members.failover
        future = self._start(
            runtime, task, execute_async, debug, on_output, prefixed=False, choose=choose
        )
        if not execute_async:
            self._wait({runtime.host: future})
        return task

    def _run_each(
        self,
        tasks: dict[str, RuntimeTask],
        execute_async: bool,
        debug: bool,
        on_output: Callable[[str, str], None] | None,
    ) -> list[RuntimeTask]:
        """Start each host's task (all of them before waiting on any); a host that
        cannot start its task fails only that task's future."""
        runtimes = self._members.all()
        futures: dict[str, ActorFuture[Any]] = {}
        for host, task in tasks.items():
            try:
                futures[host] = self._start(
                    runtimes[host], task, execute_async, debug, on_output, prefixed=True
                )
            except ActorClusterError as error:
                not_started(task, host, error)
                self._ledger.add(task)
                assert task.future is not None
                futures[host] = task.future
        if not execute_async:
            self._wait(futures)
        return list(tasks.values())

    def _start(
        self,
        runtime: Runtime,
        task: RuntimeTask,
        execute_async: bool,
        debug: bool,
        on_output: Callable[[str, str], None] | None,
        *,
        prefixed: bool,
        choose: Callable[[Runtime], Runtime] | None = None,
    ) -> ActorFuture[Any]:
        host = runtime.host
        output = None
        if on_output is not None or (debug and prefixed):
            output = HostOutput(host, on_output, echo=debug and prefixed)
        future = runtime.submit(
            task,
            as_process=execute_async,
            omit_on_join=task.omit_on_join,
            debug=debug and not prefixed,
            on_output=output,
            choose=choose,
        )
        self._ledger.add(task)
        self._members.task_started(host)

        def ended(_: ActorFuture[Any]) -> None:
            self._members.task_ended(host)
            if output is not None:
                output.close()

        future.add_done_callback(ended)
        return future

    @staticmethod
    def _wait(futures: dict[str, ActorFuture[Any]]) -> None:
        """Wait for every task (as long as they run, as a synchronous task does), then
        raise the first host's error."""
        try:
            outcomes = wait_all(futures)
        except KeyboardInterrupt:  # Ctrl-C, a notebook's stop: nothing runs on
            stop_all(futures.values())
            raise
        log_files.flush()  # a synchronous run returns with its log files written
        outcomes.raise_first()

    def execute_function(
        self,
        function: Callable[..., Any],
        host: str | None = None,
        broadcast: bool = False,
        execute_async: bool = False,
        debug: bool = False,
        *,
        isolated: bool = False,
        **func_kwargs: Any,
    ) -> RuntimeTask | list[RuntimeTask]:
        """Run ``function(**func_kwargs)`` on one runtime (``host``, or the least busy)
        or on every one (``broadcast``); see :meth:`execute_task`. The return values
        are in each task's ``function_returns`` and in :attr:`function_returns`.

        Raises:
            ValueError: ``function`` is not callable or cannot be pickled.
            TaskExecutionError: (synchronous) the function raised on a host.
        """
        name = getattr(function, "__name__", "function")
        task = RuntimeTask(f"execute-function-{name}-{next(_names)}")
        task.run_function(function, **func_kwargs)
        if isolated:  # in a child process of each agent (see Runtime.execute_function)
            isolate_last_step(task)
        return self.execute_task(task, host, broadcast, execute_async, debug=debug)

    def send_file(
        self,
        local_path: str,
        remote_path: str | None = None,
        execute_async: bool | None = True,
        *,
        progress: ProgressCallback | None = None,
    ) -> list[RuntimeTask]:
        """Send a file or folder to every runtime at once (see ``Runtime.send_file``).

        Returns:
            One task per runtime, in the group's order.

        Raises:
            ValueError: ``local_path`` is empty.
            FileTransferError: ``local_path`` does not exist (an ``OSError``); or
                (synchronous) a host's transfer failed, after every host ended.
        """
        task = RuntimeTask(f"send-file-{next(_names)}")
        task.send_file(local_path, remote_path, progress=progress)
        if not os.path.exists(os.path.expanduser(local_path)):
            raise FileTransferError("local", local_path, "no such file or folder here")
        tasks = self.execute_task(task, broadcast=True, execute_async=bool(execute_async))
        assert isinstance(tasks, list)
        return tasks

    def get_file(
        self,
        remote_path: str,
        local_path: str | None = None,
        execute_async: bool | None = True,
        *,
        progress: ProgressCallback | None = None,
    ) -> list[RuntimeTask]:
        """Fetch a file or folder from every runtime at once; each host's copy lands
        in a folder of its own: ``<local_path>/<host>/<name>`` (``local_path``
        defaults to the current directory).

        Returns:
            One task per runtime, in the group's order.

        Raises:
            ValueError: ``remote_path`` is empty.
            FileTransferError: (synchronous) a host's transfer failed, after every
                host ended.
        """
        base = os.path.expanduser(local_path) if local_path else os.getcwd()
        name = posixpath.basename(str(remote_path).rstrip("/")) or "download"
        number = next(_names)
        tasks: dict[str, RuntimeTask] = {}
        for host in self._members.all():
            task = RuntimeTask(f"get-file-{number}-{host}")
            target = os.path.join(base, host, name)
            tasks[host] = task.get_file(remote_path, target, progress=progress)
        for host in tasks:
            os.makedirs(os.path.join(base, host), exist_ok=True)
        return self._run_each(tasks, bool(execute_async), False, None)

    @property
    def function_returns(self) -> Generator[object, None, None]:
        """The return values of the functions run through the group, in the order the
        tasks started (waiting for tasks still running)."""
        return self._ledger.function_returns()

    def join(self) -> None:
        """Wait until every task started through the group (except ``omit_on_join``
        ones) ended."""
        self._ledger.join()

    def clear_tasks(self) -> None:
        """Forget every task (in the group and in its runtimes); running ones run on."""
        self._ledger.clear()
        for runtime in self._members.all().values():
            runtime.clear_tasks()

    def print_log(self) -> None:
        """Print the execution log of every runtime of the group, host by host."""
        for host, runtime in self._members.all().items():
            print(f"Execution log of runtime {host}:")
            runtime.print_log()
