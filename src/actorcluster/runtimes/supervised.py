"""Supervised background processes: a long-running command kept alive on a runtime.

``runtime.supervise("exec my-server --port 9000", restart="permanent", max_restarts=5,
period=60)`` starts the command through the runtime's agent (its own process group on
the host, its output kept as a bounded tail) under a supervisor of its own::

    root (or the given supervisor)
    └── ProcessSupervisor[process:host:name]   one_for_one, temporary
        └── ProcessActor                       the command; restarted by the policy

An exit is noticed the moment it happens (the agent answers the held RUN request) and
the supervisor restarts the command by OTP's rules, with backoff, at most
``max_restarts`` times in ``period`` seconds; past that the process is ``failed`` and
its :attr:`SupervisedProcess.error` says why. :meth:`SupervisedProcess.stop` kills the
command's whole process group and waits until it is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._logging import get_logger
from actorcluster.actors.process import ProcessActor, ProcessSpec
from actorcluster.actors.process_state import ProcessState, ProcessStatus
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.supervisors import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    root_supervisor,
    supervisor_proxy,
)
from actorcluster.tunnels import DELIMITER

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = [
    "DEFAULT_BACKOFF",
    "PROCESS",
    "ProcessSupervisor",
    "SupervisedProcess",
    "parse_restart",
    "supervise",
]

log = get_logger(__name__)

PROCESS = "process"
"""The second part of a supervised process's key (``<host>::process::<name>``)."""
DEFAULT_BACKOFF = Backoff(initial=0.1, maximum=5.0)
"""Delay between restarts of a supervised process unless another is given."""
STOP_TIMEOUT = 15.0
"""Seconds :meth:`SupervisedProcess.stop` waits for the command to be gone."""
_ASK_TIMEOUT = 60.0
_ids = itertools.count(1)


def parse_restart(restart: object) -> Restart:
    """``"permanent"``, ``"transient"``, ``"temporary"`` (or a :class:`Restart`).

    Raises:
        UsageError: anything else.
    """
    if isinstance(restart, Restart):
        return restart
    if isinstance(restart, str):
        with contextlib.suppress(ValueError):
            return Restart(restart.lower())
    names = ", ".join(repr(item.value) for item in Restart)
    raise UsageError(f"restart must be one of {names}, not {restart!r}")


class ProcessSupervisor(Supervisor):
    """One supervised process's own supervisor: it records in the process's state how
    supervision ended (stopped, or gave up with the reason)."""

    def __init__(
        self,
        name: str,
        child: ChildSpec,
        state: ProcessState,
        *,
        max_restarts: int,
        period: float,
        backoff: Backoff | None,
    ) -> None:
        super().__init__(
            name,
            Strategy.ONE_FOR_ONE,
            [child],
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
        )
        self._state = state

    def on_exit(self, error: BaseException | None) -> None:
        """Record the end of supervision in the process's state."""
        self._state.stopped(error if isinstance(error, Exception) else None)


class SupervisedProcess:
    """A long-running command kept alive on a runtime (see the module docstring).

    It has ``multiprocessing.Process``'s face too (``name``, ``is_alive()``, ``join()``,
    ``terminate()``, ``exitcode``), so it is listed among the runtime's processes.
    """

    def __init__(self, key: str, state: ProcessState, stop: Callable[[], None]) -> None:
        self.key = key
        self._state = state
        self._stop = stop

    def __repr__(self) -> str:
        state = self._state
        return f"<SupervisedProcess {self.key} {state.status.value} restarts={state.restart_count}>"

    @property
    def name(self) -> str:
        """The process key."""
        return self.key

    @property
    def host(self) -> str:
        """The runtime's host."""
        return self._state.host

    @property
    def status(self) -> str:
        """``starting``, ``running``, ``restarting``, ``exited``, ``failed`` or ``stopped``."""
        return self._state.status.value

    @property
    def restart_count(self) -> int:
        """How many times the command was started again."""
        return self._state.restart_count

    @property
    def exit_codes(self) -> list[int | None]:
        """How its latest runs ended, oldest first (negative: killed by that signal;
        None: lost with the agent)."""
        return self._state.exit_codes

    @property
    def error(self) -> Exception | None:
        """Why supervision gave up (a :class:`~actorcluster.errors.SupervisorGaveUpError`),
        or None."""
        return self._state.error

    def output(self, limit: int | None = None) -> str:
        """The latest output (stdout and stderr, bounded), its last ``limit`` characters."""
        return self._state.output.text(limit)

    @property
    def pid(self) -> int | None:
        """The latest run's pid on the host (its process group's id), once known."""
        return self._state.pid

    @property
    def exitcode(self) -> int | None:
        """None while supervised; then its last exit code (``-SIGTERM`` once stopped)."""
        state = self._state
        if not state.finished:
            return None
        if state.status is ProcessStatus.STOPPED:
            return -signal.SIGTERM
        codes = state.exit_codes
        return codes[-1] if codes and codes[-1] is not None else 1

    def is_alive(self) -> bool:
        """Whether it runs or will be restarted."""
        return not self._state.finished

    def wait_running(self, timeout: float = 30.0) -> bool:
        """Wait until its command runs (after a start or restart); False on timeout or
        once it will not run again."""
        state = self._state
        state.wait(lambda: state.finished or state.status is ProcessStatus.RUNNING, timeout)
        return state.status is ProcessStatus.RUNNING

    def wait_restarted(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until it was restarted at least ``count`` times and runs; False on
        timeout or once it will not run again."""
        state = self._state

        def done() -> bool:
            return state.finished or (
                state.restart_count >= count and state.status is ProcessStatus.RUNNING
            )

        state.wait(done, timeout)
        return state.restart_count >= count and state.status is ProcessStatus.RUNNING

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop supervising and kill the command's process group; wait (bounded) until
        it is gone from the host."""
        self._stop()
        self._state.stopped()
        if not self._state.wait_gone(timeout):
            log.warning("process.stop.timeout", process=self.key, seconds=timeout)

    def terminate(self) -> None:
        """As :meth:`stop`."""
        self.stop()

    def kill(self) -> None:
        """As :meth:`stop`."""
        self.stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait until it will not run again (stopped, exited for good, or failed)."""
        state = self._state
        state.wait(lambda: state.finished, STOP_TIMEOUT * 8 if timeout is None else timeout)


def supervise(
    handle: RuntimeHandle,
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    name: str | None = None,
    restart: object = "permanent",
    max_restarts: int = 5,
    period: float = 60.0,
    backoff: Backoff | None = DEFAULT_BACKOFF,
    supervisor: pykka.ActorRef[Any] | None = None,
) -> SupervisedProcess:
    """Start ``command`` on ``handle``'s runtime under a supervisor of its own.

    Returns once the command was sent to the host.

    Raises:
        UsageError: a bad argument (names it).
        HostUnreachableError: the runtime's agent is not up (nor came back in time).
    """
    handle.check_running()
    if not isinstance(command, str) or not command.strip():
        raise UsageError(f"command must be a non-empty string, not {command!r}")
    kind = parse_restart(restart)
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        raise UsageError(f"max_restarts must be an int >= 0, not {max_restarts!r}")
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not period > 0:
        raise UsageError(f"period must be a number of seconds > 0, not {period!r}")
    number = next(_ids)
    label = name if name else f"process-{number}"
    if DELIMITER in label:
        raise UsageError(f"name must not contain {DELIMITER!r}: {label!r}")
    spec = ProcessSpec(
        name=label,
        command=command,
        env={str(k): str(v) for k, v in (env or {}).items()},
        cwd=cwd,
        restart=kind,
    )
    state = ProcessState(handle.host, label)
    context = handle.context
    child = ChildSpec(
        id=label, start=lambda: ProcessActor.start(context, spec, state), restart=kind
    )
    supervisor_id = f"process:{handle.host}:{label}:{number}"
    parent = supervisor if supervisor is not None else root_supervisor()
    top = ChildSpec(
        id=supervisor_id,
        start=lambda: ProcessSupervisor.start(
            supervisor_id,
            child,
            state,
            max_restarts=max_restarts,
            period=float(period),
            backoff=backoff,
        ),
        restart=Restart.TEMPORARY,
        shutdown_timeout=30.0,
    )
    supervisor_proxy(parent).start_child(top).get(timeout=_ASK_TIMEOUT)

    def stop() -> None:
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError, pykka.Timeout):
            supervisor_proxy(parent).terminate_child(supervisor_id).get(timeout=_ASK_TIMEOUT)

    key = DELIMITER.join((handle.host, PROCESS, label))
    log.info("process.supervised", host=handle.host, process=label, restart=kind.value)
    return SupervisedProcess(key, state, stop)
