"""The command line: ``actorcluster run|info|demo``.

A first cut; groups and clusters come with their issues. It configures logging (the
library never does): a console renderer on a terminal, JSON lines otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from actorcluster.errors import ActorClusterError, TaskExecutionError
from actorcluster.logconfig import configure_logging

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actorcluster", description=__doc__)
    parser.add_argument("--log-level", default="warning", help="lowest level logged (warning)")
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines to stderr")
    parser.add_argument("--ssh-config", help="ssh_config file (default: ~/.ssh/config)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a shell command on a host, streaming its output")
    run.add_argument("host", help="a host from ssh_config, a host name, or localhost")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command (after --)")
    info = commands.add_parser("info", help="print a host's facts")
    info.add_argument("host")
    commands.add_parser("demo", help="run the localhost demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, json=True if args.json_logs else None)
    if args.command == "demo":
        from actorcluster.demo import main as demo

        demo()
        return 0
    from actorcluster.runtimes.runtime import Runtime
    from actorcluster.runtimes.task import RuntimeTask

    kwargs = {"ssh_config_path": args.ssh_config} if args.ssh_config else None
    try:
        with Runtime(args.host, connection_kwargs=kwargs) as runtime:
            if args.command == "info":
                runtime.print_info()
                return 0
            command = " ".join(part for part in args.cmd if part != "--")
            runtime.execute_task(RuntimeTask("cli").run_command(command), False, debug=True)
            return 0
    except TaskExecutionError as error:
        return error.exit_code if error.exit_code else 1
    except ActorClusterError as error:
        print(f"actorcluster: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
