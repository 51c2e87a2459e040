"""Serve the web view from a background thread: for a script, a notebook, or
``actorcluster observe`` (needs the ``observe`` extra)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actorcluster._limits import OBSERVER_START_TIMEOUT as START_TIMEOUT
from actorcluster._limits import Deadline
from actorcluster._workers import THREADS
from actorcluster.errors import UsageError

if TYPE_CHECKING:
    import pykka

    from actorcluster._workers import Job

__all__ = ["ObserverServer", "serve"]


class ObserverServer:
    """The view served by uvicorn on a thread of its own; :meth:`stop` ends it."""

    def __init__(self, server: Any, job: Job, app: Any, address: str) -> None:
        self._server = server
        self._job = job
        self.app = app
        """The ASGI app."""
        self.token: str = app.state.token
        """What every request must carry."""
        port = server.servers[0].sockets[0].getsockname()[1]
        self.port: int = port
        """The port it listens on."""
        self.url = f"http://{address}:{port}/?token={self.token}"
        """The page's address, token included."""

    def __repr__(self) -> str:
        return f"<ObserverServer {self.url.split('?')[0]}>"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open event streams end) and wait for the thread."""
        self._server.should_exit = True
        self._job.join(timeout)

    def __enter__(self) -> ObserverServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    root: pykka.ActorRef[Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
) -> ObserverServer:
    """Serve the view of ``root``'s tree (None: the library's) on ``host``:``port``
    (0: a free port), with ``token`` (None: a random one) in its URL.

    Raises:
        UsageError: uvicorn or starlette is missing, or it did not start listening.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise UsageError(
            "serving the view needs uvicorn: pip install 'actorcluster[observe]'"
        ) from exc
    from actorcluster.observe.view import observer_app

    app = observer_app(root, token=token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    job = THREADS.start(server.run, name="observer-view")
    deadline = Deadline(START_TIMEOUT)
    while not server.started:
        if not job.is_alive() or deadline.expired():
            server.should_exit = True
            raise UsageError(f"the observer view did not start listening on {host}:{port}")
        time.sleep(0.02)
    return ObserverServer(server, job, app, host)
