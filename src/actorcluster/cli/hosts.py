"""``actorcluster hosts [PATTERN...]``: the ssh_config's hosts, probed in parallel."""

from __future__ import annotations

import collections
import platform
from typing import TYPE_CHECKING, Any

import click

from actorcluster._workers import THREADS
from actorcluster.cli.console import print_json, print_table
from actorcluster.cli.exits import ExitCode, code_for
from actorcluster.cli.settings import Settings, cleanup_all
from actorcluster.cli.targets import resolve_hosts
from actorcluster.errors import ActorClusterError

if TYPE_CHECKING:
    from actorcluster.runtimes import Runtime

__all__ = ["hosts", "probe"]

_FACTS_TIMEOUT = 30.0
"""Seconds reading every host's facts may take, all together."""
_COLUMNS = ("host", "status", "cpus", "memory", "gpus", "python", "functions", "os / reason")


def _gib(memory: object) -> str:
    return f"{int(memory) / 2**30:.1f} GiB" if isinstance(memory, int) else "-"


def _gpus(names: list[str]) -> str:
    counts = collections.Counter(names)
    return ", ".join(f"{count}x {name}" for name, count in counts.items()) or "-"


def _status(error: ActorClusterError) -> str:
    code = code_for(error)
    return "refused" if code == ExitCode.AUTHENTICATION else "unreachable"


def _facts_of(runtimes: dict[str, Runtime]) -> dict[str, dict[str, Any] | ActorClusterError]:
    """Each runtime's facts (or the error reading them), read on a thread per host."""
    found: dict[str, dict[str, Any] | ActorClusterError] = {}

    def read(host: str, runtime: Runtime) -> None:
        try:
            found[host] = runtime.info
        except ActorClusterError as problem:
            found[host] = problem

    threads = [THREADS.start(read, *item, name=f"facts-{item[0]}") for item in runtimes.items()]
    for thread in threads:
        thread.join(_FACTS_TIMEOUT)
    return found


def probe(settings: Settings, names: list[str]) -> list[dict[str, Any]]:
    """Connect every host at once, read its facts, disconnect; one record per host, in
    order: ``host``, ``reachable`` and the facts, or ``error`` and ``error_type``."""
    from actorcluster.remote.client import functions_run_on

    connected = settings.connect(names, working_dir=None)
    try:
        facts = _facts_of(connected.runtimes)
    finally:
        cleanup_all(connected.runtimes.values())
    records = []
    for host in names:
        found: Any = facts.get(host, connected.errors.get(host))
        if isinstance(found, dict):
            functions = functions_run_on(str(found.get("python_version") or ""))
            records.append({**found, "host": host, "reachable": True, "functions": functions})
        else:
            problem = found or ActorClusterError(f"no answer from {host}")
            records.append(
                {
                    "host": host,
                    "reachable": False,
                    "status": _status(problem),
                    "error_type": type(problem).__name__,
                    "error": str(problem),
                    "exit_code": int(code_for(problem)),
                }
            )
    return records


def _client_minor() -> str:
    return "python" + ".".join(platform.python_version().split(".")[:2])


def _row(record: dict[str, Any]) -> tuple[object, ...]:
    if not record["reachable"]:
        reason = str(record["error"]).replace("\n", " ")
        return (record["host"], record["status"], None, None, None, None, None, reason)
    return (
        record["host"],
        "up",
        record.get("cpu_cores"),
        _gib(record.get("memory")),
        _gpus(list(record.get("gpus") or [])),
        record.get("python_version"),
        "yes" if record.get("functions") else f"no (needs {_client_minor()})",
        record.get("os"),
    )


@click.command(short_help="Which hosts are up: CPUs, memory, GPUs, Python.")
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.pass_obj
def hosts(settings: Settings, patterns: tuple[str, ...], as_json: bool) -> int:
    """List hosts with their CPUs, memory, GPUs and Python, probed in parallel.

    PATTERN selects hosts of the ssh_config ('gpu-*'); a plain name is probed even
    if the ssh_config does not list it. Without one, every Host of the ssh_config
    is. Each unreachable host (down, refusing, or one that takes only git over SSH)
    shows why, and is a row of the table like any other: the exit code is 0 unless
    the command itself failed. 'functions' says whether the host's Python is this
    one's minor version, which functions (not commands) need.
    """
    names = resolve_hosts(patterns, settings.ssh_config, every=not patterns)
    records = probe(settings, names)
    if as_json:
        print_json(records)
    else:
        up = sum(1 for record in records if record["reachable"])
        title = f"{up} of {len(records)} host(s) reachable"
        print_table(title, _COLUMNS, [_row(record) for record in records])
    return int(ExitCode.OK)
