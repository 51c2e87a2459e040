"""Ports for tunnels and clusters."""

from __future__ import annotations

from typing import Any

from actorcluster.errors._base import ActorClusterError

__all__ = ["NoPortsLeftError", "PortInUseError"]


class PortInUseError(ActorClusterError):
    """A port that was asked for is already in use.

    Args:
        port: the busy port.
        side: where it is busy (``"local"``, a host name, or ``"group"``). Given
            lazycluster's way, ``PortInUseError(port, group, runtime)``, a non-string
            second argument is the group.
        runtime: the runtime it is busy on, if one (not pickled).
        group: the group it is busy in, if one (not pickled).
    """

    def __init__(self, port: int, side: Any = "", runtime: Any = None, group: Any = None) -> None:
        if side is None:  # lazycluster's PortInUseError(port, None, runtime)
            side = ""
        if not isinstance(side, str):
            side, group = "group", side if group is None else group
        if not side and runtime is not None:
            side = str(getattr(runtime, "host", ""))
        if not side and group is not None:
            side = "group"
        super().__init__(port, side)
        self.runtime: Any = runtime
        """The runtime the port is busy on (lazycluster's attribute), or None."""
        self.group: Any = group
        """The group the port is busy in (lazycluster's attribute), or None."""

    @property
    def port(self) -> int:
        """The busy port."""
        return int(self.args[0])

    def __str__(self) -> str:
        port, side = self.args
        where = f" on {side}" if side else ""
        return f"port {port} is already in use{where}"


class NoPortsLeftError(ActorClusterError):
    """None of the ports offered is free.

    Args:
        ports: the ports that were tried.
        side: where (``"local"``, a host name, or ``"group"``).
    """

    def __init__(self, ports: tuple[int, ...] | list[int] = (), side: str = "") -> None:
        super().__init__(tuple(ports), side)

    def __str__(self) -> str:
        ports, side = self.args
        where = f" on {side}" if side else ""
        shown = ", ".join(map(str, ports[:10])) + (", ..." if len(ports) > 10 else "")
        return f"no free port left{where} among [{shown}]"
