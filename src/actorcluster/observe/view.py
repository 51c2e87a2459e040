"""The web view of the tree: a Starlette (ASGI) app a service mounts in its own app,
or ``actorcluster observe`` serves on 127.0.0.1 (needs the ``observe`` extra).

::

    from actorcluster.observe.view import observer_app
    app.mount("/observe", observer_app(token="..."))

Every route needs the token (``?token=...`` or the ``X-Observe-Token`` header): one
page (no build step), its JSON API, server-sent events, and ``/metrics``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from importlib import resources
from typing import TYPE_CHECKING, Any

from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.observe import control
from actorcluster.observe import snapshot as snapshot_of
from actorcluster.observe.bus import BUS
from actorcluster.observe.hooks import processes
from actorcluster.observe.view_state import ViewState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pykka
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["KEEPALIVE", "observer_app"]

KEEPALIVE = 15.0
"""Seconds between comments on an idle event stream (keeps proxies from closing it)."""


def observer_app(
    root: pykka.ActorRef[Any] | None = None, *, token: str | None = None, metrics: bool = True
) -> Starlette:
    """The view's ASGI app.

    Args:
        root: the tree to show (its root supervisor's ref); None: the library's own.
        token: what every request must carry; None: a random one (``app.state.token``).
        metrics: also serve the tree's Prometheus metrics at ``/metrics``.

    Raises:
        UsageError: Starlette is not installed (the ``observe`` extra).
    """
    try:
        from starlette.applications import Starlette
        from starlette.routing import Route
    except ImportError as exc:
        raise UsageError("the view needs starlette: pip install 'actorcluster[observe]'") from exc
    view = _View(root, token or secrets.token_urlsafe(18), metrics)
    routes = [
        Route("/", view.page),
        Route("/api/state", view.state),
        Route("/api/events", view.events),
        Route("/api/tasks/{task_id:int}", view.task),
        Route("/api/tasks/{task_id:int}/cancel", view.cancel, methods=["POST"]),
        Route("/api/processes/{host}/{name}", view.process),
        Route("/api/processes/{host}/{name}/{action}", view.act, methods=["POST"]),
        Route("/metrics", view.metrics),
    ]
    app = Starlette(routes=routes, lifespan=view.lifespan)
    app.state.token = view.token
    app.state.view = view
    return app


class _View:
    def __init__(self, root: pykka.ActorRef[Any] | None, token: str, metrics: bool) -> None:
        self.root = root
        self.token = token
        self.memory = ViewState()
        self._remove = BUS.add_listener(self.memory.on_event)
        self._metrics: Any = None
        if metrics:
            from actorcluster.observe.metrics import TreeMetrics

            self._metrics = TreeMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Listen while the app runs (a service that mounts it without running its
        lifespan just never stops listening)."""
        yield
        self.close()

    def close(self) -> None:
        """Stop listening (the app shut down)."""
        self._remove()
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def _denied(self, request: Request) -> Response | None:
        from starlette.responses import PlainTextResponse

        given = request.query_params.get("token") or request.headers.get("x-observe-token") or ""
        if secrets.compare_digest(given.encode(), self.token.encode()):
            return None
        return PlainTextResponse("a valid token is needed (?token=...)", status_code=403)

    async def page(self, request: Request) -> Response:
        from starlette.responses import HTMLResponse

        if (denied := self._denied(request)) is not None:
            return denied
        html = resources.files("actorcluster.observe").joinpath("observer.html").read_text()
        return HTMLResponse(html)

    async def state(self, request: Request) -> Response:
        import asyncio  # here: a program that never awaits is spared it (~10 ms)

        from starlette.responses import JSONResponse

        if (denied := self._denied(request)) is not None:
            return denied
        snapshot = await asyncio.to_thread(snapshot_of, self.root)
        data = {
            "snapshot": snapshot,
            "tasks": self.memory.tasks(),
            "recent": self.memory.recent_events(),
        }
        return JSONResponse(data)

    async def task(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        if (denied := self._denied(request)) is not None:
            return denied
        task = self.memory.task(request.path_params["task_id"])
        if task is None:
            return JSONResponse({"error": "no such task"}, status_code=404)
        return JSONResponse(task)

    async def process(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        if (denied := self._denied(request)) is not None:
            return denied
        host, name = request.path_params["host"], request.path_params["name"]
        state = next((p for p in processes() if (p.host, p.name) == (host, name)), None)
        if state is None:
            return JSONResponse({"error": "no such process"}, status_code=404)
        return JSONResponse({
            "host": host, "name": name, "status": str(state.status.value),
            "restarts": state.restart_count, "pid": state.pid,
            "exits": self.memory.exits(host, name), "output": state.output.text(20_000),
            "error": "" if state.error is None else str(state.error),
        })  # fmt: skip

    async def cancel(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        task_id = request.path_params["task_id"]
        return await _act(lambda: control.cancel_task(task_id))

    async def act(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        host, name = request.path_params["host"], request.path_params["name"]
        action = request.path_params["action"]
        if action == "restart":
            return await _act(lambda: control.restart_process(host, name, self.root))
        if action == "stop":
            return await _act(lambda: control.stop_process(host, name, self.root))
        from starlette.responses import JSONResponse

        return JSONResponse({"error": f"no action {action!r}"}, status_code=404)

    async def metrics(self, request: Request) -> Response:
        from starlette.responses import Response as Plain

        if (denied := self._denied(request)) is not None:
            return denied
        if self._metrics is None:
            return Plain("metrics are off", status_code=404)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Plain(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def events(self, request: Request) -> Response:
        from starlette.responses import StreamingResponse

        if (denied := self._denied(request)) is not None:
            return denied
        return StreamingResponse(_stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip


async def _stream() -> AsyncIterator[str]:
    """Server-sent events: one ``data:`` line of JSON per event (output included)."""
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    subscription = BUS.subscribe(maxsize=5000)
    try:
        yield ": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(subscription.__anext__(), KEEPALIVE)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            except StopAsyncIteration:
                return
            yield f"data: {json.dumps(event.to_dict())}\n\n"
    finally:
        subscription.close()


async def _act(action: Any) -> Response:
    import asyncio  # here: a program that never awaits is spared it (~10 ms)

    from starlette.responses import JSONResponse

    try:
        result = await asyncio.to_thread(action)
    except (UsageError, ActorClusterError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
    return JSONResponse({"ok": True, "result": result})
