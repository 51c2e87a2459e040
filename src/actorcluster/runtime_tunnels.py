"""Port exposure (tunnels): that part of :class:`~actorcluster.runtime.Runtime`.

Each exposure is a :class:`~actorcluster.actors.tunnel.TunnelActor` under the runtime's
TunnelSupervisor, riding the runtime's one SSH connection. The runtime keeps the wanted
tunnels in its :class:`~actorcluster.actors.context.RuntimeContext`, so after a
reconnect the new TunnelSupervisor opens them all again. Each is also one of the
runtime's "processes", keyed ``<host>::-L::<local>::<runtime>`` or
``<host>::-R::<runtime>::<local>``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pykka

from actorcluster._logging import get_logger
from actorcluster.actors.tunnel import tunnel_child_spec
from actorcluster.errors import HostUnreachableError, PortInUseError, RemoteError, UsageError
from actorcluster.ports import check_port
from actorcluster.remote.frames import Kind
from actorcluster.supervisors import supervisor_proxy
from actorcluster.tunnels import (
    CARRIERS,
    FROM_RUNTIME,
    LOOPBACK,
    TO_RUNTIME,
    TunnelSpec,
    port_is_free,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.actors.context import RuntimeContext
    from actorcluster.processes import ProcessHandle

__all__ = ["RuntimeTunnelsMixin", "TunnelProcess"]

log = get_logger(__name__)

_ASK_TIMEOUT = 60.0


class TunnelProcess:
    """The process handle of a port exposure (``multiprocessing.Process``'s surface)."""

    def __init__(
        self, spec: TunnelSpec, context: RuntimeContext, stop: Callable[[str], None]
    ) -> None:
        self.key = spec.key
        self.spec = spec
        self._context = context
        self._stop = stop
        self._stopped = threading.Event()

    def __repr__(self) -> str:
        return f"<TunnelProcess {self.key} {'alive' if self.is_alive() else 'stopped'}>"

    @property
    def name(self) -> str:
        """The process key (``multiprocessing.Process.name``'s role)."""
        return self.key

    def is_alive(self) -> bool:
        """Whether the tunnel is kept up (also while the runtime reconnects)."""
        return not self._stopped.is_set() and not self._context.closed

    def terminate(self) -> None:
        """Close the listener and every connection through it now; the port is free after."""
        if not self._stopped.is_set():
            self._stop(self.key)
            self._stopped.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the tunnel was stopped."""
        self._stopped.wait(timeout)


class RuntimeTunnelsMixin:
    """``expose_port_from_runtime`` and ``expose_port_to_runtime``."""

    _host: str
    _context: RuntimeContext

    if TYPE_CHECKING:

        def _check_running(self) -> None: ...
        def _register_process(self, handle: ProcessHandle) -> None: ...

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
            carrier: ``"paramiko"`` (the runtime's own connection) or ``"openssh"``
                (an ``ssh -N -L`` process: faster for bulk data, one more connection).

        Returns:
            The process key, for :meth:`stop_process`.

        Raises:
            UsageError: a port is not an int in 1..65535, or a bad carrier.
            PortInUseError: ``local_port`` is taken here (side ``"local"``).
        """
        runtime_port = check_port(runtime_port, "runtime_port")
        local = runtime_port if local_port is None else check_port(local_port, "local_port")
        return self._expose(FROM_RUNTIME, local, runtime_port, bind_address, carrier)

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
            carrier: ``"paramiko"`` or ``"openssh"`` (an ``ssh -N -R`` process).

        Returns:
            The process key, for :meth:`stop_process`.

        Raises:
            UsageError: a port is not an int in 1..65535, or a bad carrier.
            PortInUseError: ``runtime_port`` is taken on the host (side: the host).
            RemoteError: the host refused to forward for another reason.
        """
        local_port = check_port(local_port, "local_port")
        remote = local_port if runtime_port is None else check_port(runtime_port, "runtime_port")
        return self._expose(TO_RUNTIME, local_port, remote, bind_address, carrier)

    def _expose(
        self,
        direction: str,
        local_port: int,
        runtime_port: int,
        bind_address: str,
        carrier: str | None,
    ) -> str:
        if not isinstance(bind_address, str) or not bind_address.strip():
            raise UsageError(f"bind_address must be a non-empty string, not {bind_address!r}")
        if carrier not in CARRIERS or (carrier == "openssh" and self._context.options.is_local):
            raise UsageError(f"carrier must be one of {CARRIERS} (paramiko on localhost)")
        self._check_running()
        spec = TunnelSpec(
            host=self._host,
            direction=direction,
            local_port=local_port,
            runtime_port=runtime_port,
            bind_address=bind_address,
            carrier=carrier,
        )
        if not self._listen_port_free(spec) or not self._context.add_tunnel(spec):
            raise PortInUseError(spec.listen_port, spec.listen_side)
        try:
            self._start_tunnel(spec)
        except RemoteError as exc:
            self._context.remove_tunnel(spec.key)
            if not self._listen_port_free(spec):
                raise PortInUseError(spec.listen_port, spec.listen_side) from exc
            raise
        except BaseException:
            self._context.remove_tunnel(spec.key)
            raise
        self._register_process(TunnelProcess(spec, self._context, self._stop_tunnel))
        return spec.key

    def _listen_port_free(self, spec: TunnelSpec) -> bool:
        if spec.direction == FROM_RUNTIME or self._context.options.is_local:
            return port_is_free(spec.bind_address, spec.listen_port)
        payload = {"ports": [spec.listen_port], "host": spec.bind_address}
        frame = self._context.agent().call(Kind.PORTS, payload, timeout=_ASK_TIMEOUT)
        if frame.kind != Kind.RESULT:
            raise RemoteError(f"could not check port {spec.listen_port} on {self._host}")
        return bool(frame.payload["value"][0])

    def _start_tunnel(self, spec: TunnelSpec) -> None:
        """Start the tunnel's actor (strict: an open that fails fails this call)."""
        child = tunnel_child_spec(self._context, spec, strict=True)
        for _ in range(3):
            proxy = supervisor_proxy(self._context.tunnel_supervisor())
            try:
                proxy.start_child(child).get(timeout=_ASK_TIMEOUT)
            except pykka.ActorDeadError:
                continue  # the supervisor was being restarted (a reconnect): ask the next
            except UsageError:
                children = proxy.which_children().get(timeout=_ASK_TIMEOUT)
                if any(info.id == spec.key for info in children):
                    return  # a restarted supervisor already opened it from the registry
                raise
            return
        raise HostUnreachableError(self._host, "the runtime kept reconnecting")

    def _stop_tunnel(self, key: str) -> None:
        """Forget the tunnel, then stop its actor if a supervisor runs it now."""
        self._context.remove_tunnel(key)
        try:
            proxy = supervisor_proxy(self._context.tunnel_supervisor(timeout=0.0))
            proxy.terminate_child(key).get(timeout=_ASK_TIMEOUT)
            proxy.delete_child(key).get(timeout=_ASK_TIMEOUT)
        except (HostUnreachableError, UsageError, pykka.ActorDeadError):
            return  # not running now; a supervisor starting meanwhile drops it
        log.debug("tunnel.stopped", host=self._host, key=key)
