"""``actorcluster info HOST`` and ``actorcluster demo``."""

from __future__ import annotations

import click

from actorcluster.cli.console import print_json, print_table
from actorcluster.cli.settings import Settings, connect_one

__all__ = ["demo", "info"]


@click.command(short_help="One host's facts.")
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@click.pass_obj
def info(settings: Settings, host: str, as_json: bool) -> int:
    """Print one host's facts: OS, CPUs, memory, GPUs, Python."""
    with connect_one(settings, host, working_dir=None) as runtime:
        facts = runtime.info
    if as_json:
        print_json(facts)
    else:
        rows = [(key, value) for key, value in facts.items() if key != "gpu_details"]
        print_table(f"{host}", ("fact", "value"), rows)
    return 0


@click.command(short_help="The demo, on localhost (no sshd needed).")
def demo() -> int:
    """Run the demo on the localhost runtime (no sshd needed): commands, a function,
    a file round trip, a tunnel and a small Dask cluster, each step timed."""
    from actorcluster.demo import main

    main()
    return 0
