"""``actorcluster keeper status|stop``: the user's connection keepers, shown or ended."""

from __future__ import annotations

import glob
import os
import time

import click

from actorcluster.cli.console import note, print_json, print_table
from actorcluster.cli.keeper_client import ask
from actorcluster.keeper.paths import keeper_dir

__all__ = ["keeper"]


def _sockets() -> list[str]:
    folder = keeper_dir(create=False)
    return sorted(glob.glob(os.path.join(folder, "k-*.sock"))) if folder else []


def _statuses() -> list[dict[str, object]]:
    found = []
    for path in _sockets():
        answer = ask(path, {"op": "status"})
        if answer is not None:
            found.append({**answer, "socket": path})
    return found


@click.group(short_help="The connection keeper: status, stop.")
def keeper() -> None:
    """The connection keeper: a process of yours that keeps the hosts that calls of
    run, put, get, info and hosts connected to, so that the next call starts at once.

    \b
    The first such call starts it (one per ssh_config); it exits after
    $ACTORCLUSTER_KEEPER_IDLE seconds (300) with nothing to do. --no-keeper, or
    ACTORCLUSTER_KEEPER=0, keeps a call (or all) away from it. Its socket is in a
    folder only you may enter ($XDG_RUNTIME_DIR/actorcluster, or
    /tmp/actorcluster-UID) and answers only your own processes.
    """


@keeper.command(short_help="Show the keepers that are up.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def status(as_json: bool) -> int:
    """Show your keepers: process, ssh_config, hosts kept, calls served, idle time."""
    found = _statuses()
    if as_json:
        print_json(found)
        return 0
    if not found:
        note("no keeper is up")
        return 0
    rows = [
        (
            record["pid"],
            record["ssh_config"],
            ", ".join(record["hosts"]) or "-",  # type: ignore[arg-type]
            record["calls_served"],
            f"{record['idle_for']} s of {record['idle_exit']} s",
            f"{time.time() - float(record['started']):.0f} s",  # type: ignore[arg-type]
        )
        for record in found
    ]
    columns = ("pid", "ssh_config", "hosts", "calls", "idle", "up for")
    print_table(f"{len(found)} keeper(s)", columns, rows)
    return 0


@keeper.command(short_help="Stop every keeper (their runtimes are cleaned up).")
def stop() -> int:
    """Stop your keepers: each cleans its hosts up and exits."""
    stopped = [answer for path in _sockets() if (answer := ask(path, {"op": "stop"}))]
    note(f"stopped {len(stopped)} keeper(s)" if stopped else "no keeper is up")
    return 0
