"""Port exposure (tunnels) for the ``Runtime`` facade, and each tunnel's process handle.

Each exposure is a :class:`~actorcluster.actors.TunnelActor` riding the runtime's one SSH
connection (or an ``ssh -N`` process), opened through the runtime's handle, which keeps
it open across reconnects until it is stopped.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

from actorcluster._limits import REQUEST_TIMEOUT as _REQUEST_TIMEOUT
from actorcluster.errors import PortInUseError, RemoteError, UsageError
from actorcluster.runtimes.ports import check_port
from actorcluster.runtimes.processes import ProcessFace
from actorcluster.tunnels import (
    CARRIERS,
    FROM_RUNTIME,
    LOOPBACK,
    TO_RUNTIME,
    TunnelSpec,
    port_is_free,
)

if TYPE_CHECKING:
    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = ["TunnelProcess", "expose", "listen_port_free"]


class TunnelProcess(ProcessFace):
    """The process handle of a port exposure."""

    def __init__(self, spec: TunnelSpec, handle: RuntimeHandle) -> None:
        self.key = spec.key
        self.spec = spec
        self._handle = handle
        self._stopped = threading.Event()

    @property
    def exitcode(self) -> int | None:
        """None while open; ``-SIGTERM`` once stopped."""
        return None if self.is_alive() else -signal.SIGTERM

    def is_alive(self) -> bool:
        """Whether the tunnel is kept up (also while the runtime reconnects)."""
        return not self._stopped.is_set() and not self._handle.context.closed

    def terminate(self) -> None:
        """Close the listener and every connection through it now; the port is free after."""
        if not self._stopped.is_set():
            self._handle.close_tunnel(self.key)
            self._stopped.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the tunnel was stopped."""
        self._stopped.wait(timeout)


def listen_port_free(handle: RuntimeHandle, spec: TunnelSpec) -> bool:
    """Whether the tunnel's listening port is free where it listens (here or the host)."""
    if spec.direction == FROM_RUNTIME or handle.options.is_local:
        return port_is_free(spec.bind_address, spec.listen_port)
    client = handle.client()
    return client.ports_free([spec.listen_port], spec.bind_address).result(_REQUEST_TIMEOUT)[0]


def expose(
    handle: RuntimeHandle,
    direction: str,
    local_port: int,
    runtime_port: int,
    *,
    bind_address: str = LOOPBACK,
    carrier: str | None = None,
    runtime: Any = None,
) -> TunnelProcess:
    """Open a tunnel (``direction`` :data:`FROM_RUNTIME` or :data:`TO_RUNTIME`);
    ``runtime`` is the facade asking, named in a :class:`PortInUseError`.

    Raises:
        UsageError: a bad port, address or carrier.
        PortInUseError: the listening port is taken (here, or on the host).
        RemoteError: the host refused to forward for another reason.
    """
    local_port = check_port(local_port, "local_port")
    runtime_port = check_port(runtime_port, "runtime_port")
    if direction not in (FROM_RUNTIME, TO_RUNTIME):
        raise UsageError(f"direction must be {FROM_RUNTIME!r} or {TO_RUNTIME!r}")
    if not isinstance(bind_address, str) or not bind_address.strip():
        raise UsageError(f"bind_address must be a non-empty string, not {bind_address!r}")
    if carrier not in CARRIERS or (carrier == "openssh" and handle.options.is_local):
        raise UsageError(f"carrier must be one of {CARRIERS} (None or paramiko on localhost)")
    handle.check_running()
    spec = TunnelSpec(
        host=handle.host,
        direction=direction,
        local_port=local_port,
        runtime_port=runtime_port,
        bind_address=bind_address,
        carrier=carrier,
    )
    if handle.context.has_tunnel(spec.key) or not listen_port_free(handle, spec):
        raise PortInUseError(spec.listen_port, spec.listen_side, runtime)
    try:
        handle.open_tunnel(spec)
    except PortInUseError as exc:
        raise PortInUseError(spec.listen_port, spec.listen_side, runtime) from exc
    except RemoteError as exc:
        if not listen_port_free(handle, spec):
            raise PortInUseError(spec.listen_port, spec.listen_side, runtime) from exc
        raise
    return TunnelProcess(spec, handle)
