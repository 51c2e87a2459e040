"""A group's place in the supervision tree: :class:`GroupTree`.

::

    root (or a service's SupervisionTree)
    └── GroupSupervisor[group-N]   one_for_one
        ├── RuntimeSupervisor[host-1]
        └── RuntimeSupervisor[host-2] ...

The runtimes a group connects run under its supervisor, so stopping the group stops
exactly those runtimes, and a service that owns several groups owns each subtree.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any

import pykka

from actorcluster._limits import ASK_TIMEOUT
from actorcluster._limits import GROUP_STOP_TIMEOUT as STOP_TIMEOUT
from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError
from actorcluster.supervisors import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    root_supervisor,
    supervisor_proxy,
)

if TYPE_CHECKING:
    from actorcluster.supervisors import ChildInfo

__all__ = ["GroupSupervisor", "GroupTree"]

log = get_logger(__name__)

_ids = itertools.count(1)


class GroupSupervisor(Supervisor):
    """The supervisor of one group's runtimes: one_for_one, so a host that gives up
    is restarted on its own, with a generous intensity (100 restarts in 10 s) and the
    default backoff, as the root has."""

    def __init__(self, name: str) -> None:
        super().__init__(
            name, Strategy.ONE_FOR_ONE, max_restarts=100, period=10.0, backoff=Backoff()
        )


class GroupTree:
    """A group's supervisor, started under ``parent`` (None: the library's root tree).

    Args:
        parent: the supervisor to start under; a service passes its own tree's ref.
        name: the group's name in logs and in the tree; None: ``group-N``.
    """

    def __init__(self, parent: pykka.ActorRef[Any] | None = None, name: str | None = None) -> None:
        self.name = name or f"group-{next(_ids)}"
        self._parent = parent if parent is not None else root_supervisor()
        self._lock = threading.Lock()
        spec = ChildSpec(
            id=self.name,
            start=lambda: GroupSupervisor.start(self.name),
            restart=Restart.TEMPORARY,  # a restarted one would be empty: its runtimes
            # are dynamic children; a group that gave up stays down, its calls failing
            shutdown_timeout=STOP_TIMEOUT,
        )
        self.ref: pykka.ActorRef[Any] = (
            supervisor_proxy(self._parent).start_child(spec).get(timeout=ASK_TIMEOUT)
        )
        self._stopped = False
        log.debug("group.started", group=self.name)

    def __repr__(self) -> str:
        return f"<GroupTree {self.name} {'stopped' if self._stopped else 'running'}>"

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped

    def children(self) -> list[ChildInfo]:
        """The runtimes running under the group now (an empty list once stopped)."""
        try:
            return supervisor_proxy(self.ref).which_children().get(timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            return []

    def stop(self) -> None:
        """Stop the group's supervisor and every runtime still under it; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        proxy = supervisor_proxy(self._parent)
        # The tree may be gone already (interpreter exit), or the child with it.
        with contextlib.suppress(pykka.ActorDeadError, ActorClusterError, pykka.Timeout):
            proxy.terminate_child(self.name).get(timeout=STOP_TIMEOUT)
        log.debug("group.stopped", group=self.name)
