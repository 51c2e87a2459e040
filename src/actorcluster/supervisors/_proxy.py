"""Typed access to a supervisor from other threads: ``supervisor_proxy(ref)``."""

from __future__ import annotations

from typing import TypeVar, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actorcluster.supervisors._supervisor import Supervisor

__all__ = ["SupervisorProxy", "supervisor_proxy"]

_S = TypeVar("_S", bound=Supervisor)


class SupervisorProxy(ActorMemberMixin, pykka.ActorProxy[Supervisor]):
    """The typed view of ``supervisor_ref.proxy()``: each method returns a future."""

    start_child = proxy_method(Supervisor.start_child)
    terminate_child = proxy_method(Supervisor.terminate_child)
    restart_child = proxy_method(Supervisor.restart_child)
    delete_child = proxy_method(Supervisor.delete_child)
    which_children = proxy_method(Supervisor.which_children)
    count_children = proxy_method(Supervisor.count_children)
    statistics = proxy_method(Supervisor.statistics)


def supervisor_proxy(ref: pykka.ActorRef[_S]) -> SupervisorProxy:
    """A typed proxy to a supervisor: ``supervisor_proxy(ref).start_child(spec).get(timeout=5)``."""
    return cast("SupervisorProxy", ref.proxy())
