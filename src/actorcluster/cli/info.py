"""``actorcluster info HOST`` and ``actorcluster demo``."""

from __future__ import annotations

from typing import Any

import click

from actorcluster.cli.console import error, print_json, print_table
from actorcluster.cli.settings import Settings, connect_one
from actorcluster.cli.targets import resolve_hosts

__all__ = ["demo", "info"]


@click.command(short_help="Hosts' facts.")
@click.argument("words", nargs=-1, required=True, metavar="HOST...")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@click.pass_obj
def info(settings: Settings, words: tuple[str, ...], as_json: bool) -> int:
    """Print hosts' facts: OS, CPUs, memory, GPUs, Python.

    HOST is a name, a comma-separated list or a pattern ('gpu-*'). With one host,
    --json prints its facts as one object; with several, a list of them (and an
    error record for a host that cannot be reached, whose code is the exit code).
    """
    hosts = resolve_hosts(words, settings.ssh_config)
    if len(hosts) == 1:
        with connect_one(settings, hosts[0], working_dir=None) as runtime:
            facts = runtime.info
        _show(hosts[0], facts, as_json)
        return 0
    from actorcluster.cli.hosts import probe

    records = probe(settings, hosts)
    if as_json:
        print_json(records)
    for record in records if not as_json else []:
        if record["reachable"]:
            _show(record["host"], record, as_json=False)
        else:
            error(str(record["error"]))
    failed = [int(record["exit_code"]) for record in records if not record["reachable"]]
    return max(failed, default=0)


def _show(host: str, facts: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(facts)
        return
    hidden = {"gpu_details", "host", "reachable"}
    rows = [(key, value) for key, value in facts.items() if key not in hidden]
    print_table(f"{host}", ("fact", "value"), rows)


@click.command(short_help="The demo, on localhost (no sshd needed).")
def demo() -> int:
    """Run the demo on the localhost runtime (no sshd needed): commands, a function,
    a file round trip, a tunnel and a small Dask cluster, each step timed."""
    from actorcluster.demo import main

    main()
    return 0
