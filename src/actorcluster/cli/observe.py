"""``actorcluster observe [HOST...]``: the web view of the tree, served on 127.0.0.1
with a random token in its URL, until Ctrl-C. Starlette and uvicorn are imported only
when the command runs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from actorcluster.cli.settings import Settings

__all__ = ["observe"]


@click.command(short_help="Serve the web view of the tree (live).")
@click.argument("hosts", nargs=-1)
@click.option("--port", type=int, default=0, show_default=True, help="The port (0: a free one).")
@click.option("--bind", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--token", default=None, help="The token the URL carries (default: a random one).")
@click.pass_obj
def observe(
    settings: Settings, hosts: tuple[str, ...], port: int, bind: str, token: str | None
) -> int:
    """Connect HOSTS (if any) and serve the live view of the supervision tree: runtimes,
    tasks, supervised processes, tunnels and recent events, with buttons to cancel a
    task or restart or stop a process. Prints the URL (with its token); Ctrl-C stops."""
    from actorcluster.cli.settings import cleanup_all
    from actorcluster.observe.serve import serve  # starlette and uvicorn: only here

    connected = settings.connect(list(hosts), None) if hosts else None
    server = serve(host=bind, port=port, token=token)
    try:
        if connected is not None:
            for host, problem in connected.errors.items():
                click.echo(f"{host}: {problem}", err=True)
        click.echo(f"observer: {server.url}", err=False)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if connected is not None:
            cleanup_all(connected.runtimes.values())
    return 0
