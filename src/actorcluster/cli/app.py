"""The ``actorcluster`` command: global options, the commands, and :func:`main`.

:func:`main` turns every expected failure into a one-line message and an exit code
(:mod:`actorcluster.cli.exits`): an error of the library, a usage error, Ctrl-C, the
output's reader going away. Only ``--debug`` shows tracebacks; an unexpected error
says to run with it.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import TYPE_CHECKING

import click

from actorcluster.cli.console import PROG, error, note, silence_stdout
from actorcluster.cli.exits import EXIT_CODES_HELP, ExitCode, code_for
from actorcluster.cli.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cli", "main", "version"]

_LEVELS = {0: "warning", 1: "info"}


_LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "hosts": ("actorcluster.cli.hosts", "Which hosts are up: CPUs, memory, GPUs, Python."),
    "run": ("actorcluster.cli.run", "A shell command on one host or many."),
    "put": ("actorcluster.cli.transfer", "Send files and folders to hosts."),
    "get": ("actorcluster.cli.transfer", "Fetch files and folders from hosts."),
    "info": ("actorcluster.cli.info", "Hosts' facts."),
    "dask": ("actorcluster.cli.dask", "A supervised Dask cluster until Ctrl-C."),
    "demo": ("actorcluster.cli.info", "The demo, on localhost (no sshd needed)."),
    "keeper": ("actorcluster.cli.keeper_command", "The connection keeper: status, stop."),
    "observe": ("actorcluster.cli.observe", "Serve the web view of the tree (live)."),
}
"""The commands, each imported only when it runs (its module and the library it needs
load then): the module it is in, and its short help for ``--help`` (a test checks it
matches the command's own)."""


def version() -> str:
    """The installed package's version (the source tree's when not installed)."""
    from importlib import metadata

    try:
        return metadata.version("actorcluster")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _print_version(context: click.Context, _: click.Parameter, wanted: bool) -> None:
    if wanted and not context.resilient_parsing:
        click.echo(f"{PROG} {version()}")
        context.exit()


class _Commands(click.Group):
    """The commands, listed in the order they are added; a closed output pipe ends one
    quietly (click would exit 1)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands' names, in the order they were added."""
        return [*_LAZY_COMMANDS, *(name for name in self.commands if name not in _LAZY_COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, its module imported now."""
        lazy = _LAZY_COMMANDS.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            command = getattr(importlib.import_module(lazy[0]), cmd_name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help, without importing them."""
        rows = []
        for name in self.list_commands(ctx):
            lazy = _LAZY_COMMANDS.get(name)
            if lazy is not None and name not in self.commands:
                rows.append((name, lazy[1]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; its reader going away is :attr:`ExitCode.BROKEN_PIPE`."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as problem:
            return _failed(problem, ctx.ensure_object(Settings))


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "--ssh-config",
    metavar="PATH",
    envvar="ACTORCLUSTER_SSH_CONFIG",
    show_envvar=True,
    help="The ssh_config naming the hosts. [default: ~/.ssh/config]",
)
@click.option(
    "--connect-timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="How long hosts may take to come up, all together.",
)
@click.option("-v", "--verbose", count=True, help="Log more: -v info, -vv debug.")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="How log lines look (they go to stderr).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks (and log everything).")
@click.option(
    "--no-keeper",
    is_flag=True,
    help="Connect from this process, not through the keeper (nor start one; "
    "ACTORCLUSTER_KEEPER=0 does it always).",
)
@click.pass_context
def cli(
    context: click.Context,
    *,
    ssh_config: str | None,
    connect_timeout: float,
    verbose: int,
    log_format: str,
    debug: bool,
    no_keeper: bool,
) -> None:
    """Run commands, move files and start Dask clusters on the machines of your
    ssh_config, over SSH with nothing installed on them.

    \b
      actorcluster hosts                     which hosts are up, and what they have
      actorcluster run host-1 -- nproc       a command on one host, or many
      actorcluster put data/ host-1:data     files there, and back with get
      actorcluster dask 'gpu-*' -w 8         a Dask cluster until Ctrl-C
      actorcluster demo                      all of it on this machine

    Hosts are the Host entries of the ssh_config (or host names, or 'localhost',
    which needs no sshd). Run 'actorcluster COMMAND --help' for a command's options.
    """
    from actorcluster.logconfig import configure_logging

    settings = context.ensure_object(Settings)
    settings.ssh_config = ssh_config or None
    settings.connect_timeout = connect_timeout
    settings.debug = debug
    level = "debug" if debug else _LEVELS.get(verbose, "debug")
    # At the default level most calls log nothing: structlog waits for a first event.
    configure_logging(level, json=log_format == "json", on_first_event=level == "warning")


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``run``'s arguments before the first ``--`` and the command words after it
    (None without one); other commands' arguments are left as they are."""
    args = list(argv)
    if "--" not in args:
        return args, None
    cut = args.index("--")
    if "run" not in args[:cut]:
        return args, None
    return args[:cut], args[cut + 1 :]


def main(argv: Sequence[str] | None = None, *, keeper: object = None) -> int:
    """Run the command line here (``argv``: the arguments, default ``sys.argv[1:]``);
    returns the exit status. ``keeper``: where a keeper serving the call lends runtimes
    from (:attr:`Settings.keeper`); :func:`actorcluster.cli.main` is the entry point
    that hands calls to a keeper."""
    args, command = split_command(sys.argv[1:] if argv is None else argv)
    settings = Settings(command=command, keeper=keeper)
    try:
        result = cli.main(args, prog_name=PROG, standalone_mode=False, obj=settings)
    except click.exceptions.Exit as done:  # --help, --version
        return int(done.exit_code)
    except click.ClickException as problem:
        problem.show()
        return int(ExitCode.USAGE)
    except (KeyboardInterrupt, click.exceptions.Abort, BrokenPipeError, Exception) as problem:
        return _failed(problem, settings)
    return int(result or 0)


def _failed(problem: BaseException, settings: Settings) -> int:
    """Say what ended the command line (a traceback only with ``--debug``); its code."""
    if settings.debug:
        traceback.print_exception(type(problem), problem, problem.__traceback__)
    if isinstance(problem, (KeyboardInterrupt, click.exceptions.Abort)):
        note("interrupted; everything started was stopped")
        return int(ExitCode.INTERRUPTED)
    if isinstance(problem, BrokenPipeError):
        silence_stdout()
        return int(ExitCode.BROKEN_PIPE)
    from actorcluster.errors import ActorClusterError

    if isinstance(problem, ActorClusterError):
        error(str(problem))
        return int(code_for(problem))
    if not settings.debug:  # a bug of ours: say so, briefly
        error(f"unexpected {type(problem).__name__}: {problem} (run with --debug for details)")
    return int(ExitCode.FAILED)
