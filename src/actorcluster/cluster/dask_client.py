"""A ``distributed.Client`` that gives back its IO loop thread when it fails.

A synchronous ``distributed.Client`` starts a thread running its event loop (``IO
loop``, with an epoll fd and a self-pipe) before it connects, and stops it only at the
end of a ``close()`` that succeeds. A connect that fails (the scheduler restarting, a
refused port) leaves the thread and its three fds for the life of the process: each
readiness probe of a restarting scheduler, each ``get_client()`` while it is down,
leaked one. :func:`connect` hands back a client that stops its loop thread when its
start fails. (A ``close()`` that times out, the scheduler gone, still leaves it:
stopping the loop there can deadlock when ``close`` runs from ``__del__``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["connect"]

_client_class: list[type[Client]] = []


def _class() -> type[Client]:
    """The subclass, made once on first use (``distributed`` is imported lazily)."""
    if _client_class:
        return _client_class[0]
    from distributed import Client

    class OwnLoopClient(Client):
        """A Client whose failed start stops its loop thread."""

        def start(self, **kwargs: Any) -> None:
            try:
                super().start(**kwargs)  # type: ignore[no-untyped-call]
            except BaseException:
                self._loop_runner.stop()  # type: ignore[no-untyped-call]
                raise

    _client_class.append(OwnLoopClient)
    return OwnLoopClient


def connect(address: str, timeout: float, *, set_as_default: bool, security: Any) -> Client:
    """A connected synchronous client of the scheduler at ``address``; on failure, the
    error of ``distributed.Client`` with nothing left running."""
    return _class()(address, timeout=timeout, set_as_default=set_as_default, security=security)
