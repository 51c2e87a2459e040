"""actorcluster: remote machines over SSH as supervised actors.

The public API is lazycluster's (``Runtime``, ``RuntimeTask``, ``RuntimeGroup``,
``RuntimeManager``, its errors), with futures
that can be awaited from asyncio; every public name is re-exported here.
"""

from __future__ import annotations

from actorcluster.errors import (
    ActorClusterError,
    AgentLostError,
    AgentStartError,
    AuthenticationError,
    ConfigurationError,
    ConnectionRefusedHostError,
    FileTransferError,
    FutureTimeoutError,
    HostKeyChangedError,
    HostKeyError,
    HostUnreachableError,
    InvalidRuntimeError,
    LazyclusterError,
    MasterLostError,
    MasterStartError,
    MissingDependencyError,
    NoPortsLeftError,
    NoRuntimesDetectedError,
    PathCreationError,
    PortInUseError,
    ProcessExitedError,
    ProtocolError,
    RemoteError,
    RemoteFunctionError,
    RemoteOperationError,
    RequestCancelledError,
    RequestTimeoutError,
    ReturnValueTooLargeError,
    RevokedHostKeyError,
    SupervisorGaveUpError,
    TaskCancelledError,
    TaskExecutionError,
    UnknownHostError,
    UnknownHostKeyError,
    UnknownProcessKeyError,
    UsageError,
)
from actorcluster.futures import ActorFuture
from actorcluster.groups import RuntimeGroup, RuntimeManager
from actorcluster.runtimes.runtime import Runtime
from actorcluster.runtimes.task import RuntimeTask

__all__ = [
    "ActorClusterError",
    "ActorFuture",
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
    "RemoteError",
    "RemoteFunctionError",
    "RemoteOperationError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "ReturnValueTooLargeError",
    "RevokedHostKeyError",
    "Runtime",
    "RuntimeGroup",
    "RuntimeManager",
    "RuntimeTask",
    "SupervisorGaveUpError",
    "TaskCancelledError",
    "TaskExecutionError",
    "UnknownHostError",
    "UnknownHostKeyError",
    "UnknownProcessKeyError",
    "UsageError",
]

__version__ = "0.1.0"
