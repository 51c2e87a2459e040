"""What the hooks and snapshots read of a runtime's context and of a supervised
process's record: protocols, so this low layer imports nothing of the actors above it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["OutputLike", "ProcessLike", "RuntimeLike"]


class RuntimeLike(Protocol):
    """A runtime's context (:class:`~actorcluster.actors.context.RuntimeContext`)."""

    host: str

    @property
    def running_task_count(self) -> int:
        """How many tasks run now."""

    def tunnels(self) -> Sequence[Any]:
        """The wanted tunnels (each with a ``key``)."""


class OutputLike(Protocol):
    """A bounded output tail."""

    def text(self, limit: int | None = None) -> str:
        """The latest ``limit`` characters."""


class ProcessLike(Protocol):
    """A supervised process's record (:class:`~actorcluster.actors.process_state.ProcessState`)."""

    host: str
    name: str
    pid: int | None
    output: Any

    @property
    def status(self) -> Any:
        """Where it stands (an enum with a ``value``)."""

    @property
    def restart_count(self) -> int:
        """How many times it was restarted."""

    @property
    def exit_codes(self) -> list[int | None]:
        """Its recent exit codes."""

    @property
    def error(self) -> Exception | None:
        """Why supervision gave up, if it did."""
