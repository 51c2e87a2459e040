"""Every exception actorcluster raises, under one base class (:class:`ActorClusterError`).

The classes live in one private module per area (``_usage``, ``_connection``,
``_agent``, ``_tasks``, ``_transfers``, ``_ports``, ``_processes``, ``_cluster``) and
are imported from here: ``actorcluster.errors`` is their one public path, and each
class says so in its ``__module__`` (as trio does), so tracebacks and pickles name
``actorcluster.errors.X`` whatever module defines it. What each error means, by whose
fault it is, is told in docs/reference/errors.md.
"""

from __future__ import annotations

from actorcluster.errors._agent import (
    AgentLostError,
    AgentStartError,
    ProtocolError,
    PythonVersionMismatchError,
    RemoteOperationError,
    RequestCancelledError,
    RequestTimeoutError,
)
from actorcluster.errors._base import (
    ActorClusterError,
    LazyclusterError,
    RemoteError,
)
from actorcluster.errors._cluster import (
    MasterLostError,
    MasterStartError,
    MissingDependencyError,
    NoRuntimesDetectedError,
)
from actorcluster.errors._connection import (
    AuthenticationError,
    ConnectionRefusedHostError,
    HostKeyChangedError,
    HostKeyError,
    HostUnreachableError,
    InvalidRuntimeError,
    RevokedHostKeyError,
    UnknownHostError,
    UnknownHostKeyError,
)
from actorcluster.errors._ports import (
    NoPortsLeftError,
    PortInUseError,
)
from actorcluster.errors._processes import (
    ProcessExitedError,
    SupervisorGaveUpError,
)
from actorcluster.errors._tasks import (
    FutureTimeoutError,
    RemoteFunctionError,
    ReturnValueTooLargeError,
    TaskCancelledError,
    TaskExecutionError,
)
from actorcluster.errors._transfers import (
    FileTransferError,
    PathCreationError,
)
from actorcluster.errors._usage import (
    ConfigurationError,
    UnknownProcessKeyError,
    UsageError,
)

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

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
