"""Supervised processes and supervisors."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError, RemoteError, _tail

__all__ = ["ProcessExitedError", "SupervisorGaveUpError"]


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
