"""Waiting for a cluster's master to listen on its port, and the error of a master that
did not come up (:class:`MasterChecks`, a base of the cluster's context)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster.cluster.endpoints import PORT_TAKEN
from actorcluster.errors import MasterStartError

if TYPE_CHECKING:
    from actorcluster.runtimes import Runtime
    from actorcluster.runtimes.supervised import ProcessState

__all__ = ["MasterChecks"]

_PROBE_INTERVALS = (0.01, 0.02, 0.05, 0.1, 0.2)


class MasterChecks:
    """Whether the master listens, and the error when it does not."""

    def wait_listening(
        self, runtime: Runtime, port: int, state: ProcessState, timeout: float
    ) -> None:
        """Wait until ``port`` is taken on ``runtime``'s host (the master listens),
        ending at once if the master exits.

        Raises:
            MasterStartError: it exited, or did not listen within ``timeout`` (with its
                latest output).
        """
        deadline = Deadline(timeout)
        client = runtime.handle.client()
        why = f"port {port} was not listening after {timeout:g} s"
        for attempt in itertools.count():
            if state.exit_codes:  # exited (the service may be restarting it already)
                raise self.master_start_error(runtime.host, port, state, "it exited")
            if deadline.expired():
                break
            left = deadline.remaining()
            if not client.ports_free([port]).result(max(1.0, left))[0]:
                # Taken: by the master, or by another program that took it first (then
                # the master fails to bind, and exits or keeps trying).
                group = state.pid
                if group is None:
                    return
                (ours,) = client.ports_listened_by([port], group).result(max(1.0, left))
                if ours is not False:
                    return
                why = f"port {port} is {PORT_TAKEN} (not by the master)"
            pause = _PROBE_INTERVALS[min(attempt, len(_PROBE_INTERVALS) - 1)]
            state.wait(lambda: bool(state.exit_codes), min(pause, max(0.0, left)))
        raise self.master_start_error(runtime.host, port, state, why)

    @staticmethod
    def master_start_error(host: str, port: int, state: ProcessState, why: str) -> MasterStartError:
        """The error for a master that did not come up, with its latest output."""
        codes = state.exit_codes
        if codes:
            why += f" (exit code {codes[-1]})"
        output = state.output.text(3000)
        return MasterStartError(host, port, f"{why}; its output: {output!r}" if output else why)
