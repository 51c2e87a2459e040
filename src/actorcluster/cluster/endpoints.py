"""Where a cluster's master runs and how everyone reaches it (:class:`MasterEndpoint`),
and where each worker runs and listens (:class:`WorkerSlot`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANY_ADDRESS", "PORT_TAKEN", "MasterEndpoint", "WorkerSlot"]

ANY_ADDRESS = "0.0.0.0"
"""Where a directly wired process listens: every address."""
PORT_TAKEN = "taken by another program"
"""How a master start error says its port was taken by another program."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterEndpoint:
    """Where the master runs, and how everyone reaches it."""

    host: str
    """The host of the runtime it runs on (``localhost``: this machine)."""
    port: int
    """Its port there."""
    here: tuple[str, int]
    """Address and port that reach it from this machine."""
    per_host: dict[str, tuple[str, int]]
    """Address and port that reach it from each host of the group."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSlot:
    """One worker to start: where, on which ports, and how it reaches the master."""

    index: int
    """Its number in the cluster (from 0)."""
    host: str
    """The host it runs on."""
    port: int
    """The port it listens on, on its host."""
    listen_address: str
    """The address it binds."""
    contact_address: str
    """The address everyone reaches it at."""
    contact_port: int
    """The port everyone reaches it at (its own port unless tunnelled through here)."""
    master_address: str
    """The address it reaches the master at."""
    master_port: int
    """The port it reaches the master at."""
    working_dir: str
    """Its runtime's working directory."""
