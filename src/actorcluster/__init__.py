"""actorcluster: remote machines over SSH as supervised actors.

The public API is lazycluster's (``Runtime``, ``RuntimeTask``, ``RuntimeGroup``,
``RuntimeManager``, its errors), with futures
that can be awaited from asyncio; every public name is re-exported here.

Names are imported when first used (a module-level ``__getattr__``, PEP 562): ``import
actorcluster`` alone loads neither paramiko nor the actor system, so the command line
starts fast. ``from actorcluster import Runtime`` and every lazycluster import path
(``actorcluster.runtimes``, ``actorcluster.cluster``, ...) work as before.
"""

from __future__ import annotations

TYPE_CHECKING = False  # neither typing nor importlib: a call the keeper serves needs them not
if TYPE_CHECKING:
    from typing import Any

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
        PythonVersionMismatchError,
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
    "PythonVersionMismatchError",
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

_ERRORS = tuple(name for name in __all__ if name.endswith("Error"))
_HOMES: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "actorcluster.errors"),
    "ActorFuture": "actorcluster.futures",
    "RuntimeGroup": "actorcluster.groups",
    "RuntimeManager": "actorcluster.groups",
    "Runtime": "actorcluster.runtimes.runtime",
    "RuntimeTask": "actorcluster.runtimes.task",
}
"""Where each public name lives, imported on first use."""


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (then kept here); else a submodule
    (``actorcluster.runtimes`` without importing it first, as the eager package allowed).

    Raises:
        AttributeError: no such name or submodule.
    """
    import importlib

    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the not yet imported public ones included."""
    return sorted({*globals(), *__all__})
