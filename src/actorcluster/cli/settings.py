"""The command line's global settings, and connecting runtimes with them."""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actorcluster._limits import Deadline

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from actorcluster.runtimes import ConnectedRuntimes, Runtime

__all__ = ["CLEANUP_TIMEOUT", "KEPT_RUNTIMES", "Settings", "cleanup_all", "connect_one"]

CLEANUP_TIMEOUT = 30.0
"""Seconds the command line waits for its runtimes to stop, all together."""
KEPT_RUNTIMES: weakref.WeakSet[Runtime] = weakref.WeakSet()
"""Runtimes a keeper lends to its calls: :func:`cleanup_all` leaves them up."""


@dataclass
class Settings:
    """The global options, shared by every command (click's context object)."""

    command: list[str] | None = None
    """The words after ``--`` (``run``'s command), None without ``--``."""
    ssh_config: str | None = None
    """The ssh_config to read; None: ``$ACTORCLUSTER_SSH_CONFIG``, else ``~/.ssh/config``."""
    connect_timeout: float = 20.0
    """Seconds hosts may take to come up, all together."""
    debug: bool = False
    """Show tracebacks of expected failures too."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More connection settings (tests)."""
    keeper: Any = None
    """Where a keeper serving this call lends runtimes from (a callable taking
    ``hosts, working_dir, connection_kwargs, timeout``); None: connect here."""

    def connection_kwargs(self) -> dict[str, Any]:
        """``connection_kwargs`` for every runtime: each step of coming up (TCP, the
        SSH banner, authentication, the agent's start) gives up by itself within
        ``connect_timeout``, so that a host that does not answer ends the command by
        then (an abandoned start would otherwise finish its own, longer, waits)."""
        limit = self.connect_timeout
        kwargs: dict[str, Any] = {
            "connect_timeout": limit,
            "banner_timeout": limit,
            "auth_timeout": limit,
            "agent_start_timeout": limit,
        }
        kwargs.update(self.extra)
        if self.ssh_config:
            kwargs["ssh_config_path"] = self.ssh_config
        return kwargs

    def connect(self, hosts: Sequence[str], working_dir: str | None = "~") -> ConnectedRuntimes:
        """Connect ``hosts`` in parallel, working in the login's home (as ``ssh``
        does) unless ``working_dir`` says otherwise; None: a temporary folder."""
        if self.keeper is not None:
            return self.keeper(  # type: ignore[no-any-return]
                hosts, working_dir, self.connection_kwargs(), self.connect_timeout
            )
        from actorcluster.runtimes import Runtime

        return Runtime.connect_many(
            hosts,
            working_dir=working_dir,
            connection_kwargs=self.connection_kwargs(),
            timeout=self.connect_timeout,
        )


def cleanup_all(runtimes: Iterable[Runtime], timeout: float = CLEANUP_TIMEOUT) -> None:
    """Clean the runtimes up, all at once (each kills what it started on its host and
    removes its temporary folders), waiting up to ``timeout`` seconds in all; a
    keeper's runtimes are left up for its next call."""
    runtimes = [runtime for runtime in runtimes if runtime not in KEPT_RUNTIMES]
    from actorcluster._workers import THREADS  # lazy: the CLI's entry imports this module

    jobs = [THREADS.start(runtime.cleanup, name=f"cleanup-{runtime.host}") for runtime in runtimes]
    deadline = Deadline(timeout)
    for job in jobs:
        job.join(deadline.remaining())


@contextlib.contextmanager
def connect_one(settings: Settings, host: str, working_dir: str | None = "~") -> Iterator[Runtime]:
    """One host's runtime for the block, cleaned up after it.

    Raises:
        InvalidRuntimeError: the host cannot be used (its subclasses say why).
    """
    connected = settings.connect([host], working_dir)
    if host in connected.errors:
        raise connected.errors[host]
    runtime = connected.runtimes[host]
    try:
        yield runtime
    finally:
        cleanup_all([runtime])
