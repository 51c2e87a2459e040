"""Clusters and the detection of runtimes."""

from __future__ import annotations

from actorcluster.errors._base import ActorClusterError, RemoteError, _tail

__all__ = [
    "MasterLostError",
    "MasterStartError",
    "MissingDependencyError",
    "NoRuntimesDetectedError",
]


class MasterStartError(ActorClusterError):
    """A cluster's master did not start in time.

    Args:
        host: the host the master was started on.
        port: the master's port.
        reason: why it did not start (with the master's last output), in words.
    """

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


class MissingDependencyError(RemoteError):
    """A program a cluster needs is not installed for a host's interpreter.

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
