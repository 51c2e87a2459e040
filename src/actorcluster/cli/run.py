"""``actorcluster run HOST... -- COMMAND``: a shell command on one host or many.

Every host connects and runs the command at once. Output streams live: stdout to
stdout and stderr to stderr, each line prefixed with ``[host]`` when there are several.
With one host, stdin is forwarded to the command (``-n`` reads nothing instead). The
exit code is the command's (several hosts: the highest; a host that failed counts with
the command line's code for its error), and each host that failed gets a summary line.
Ctrl-C, or the output's reader going away, stops the command on every host.
``--json`` prints one JSON object per host instead, as each ends (:mod:`json_results`).
"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING

import click

from actorcluster.cli.console import error, note
from actorcluster.cli.exits import ExitCode, code_for
from actorcluster.cli.json_results import JsonResults
from actorcluster.cli.settings import Settings, cleanup_all
from actorcluster.cli.streams import HostStreams
from actorcluster.cli.targets import resolve_hosts
from actorcluster.errors import ActorClusterError, UsageError
from actorcluster.futures import as_completed, wait
from actorcluster.runtimes.shell import ShellCommand, run_shell

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO

    from actorcluster.runtimes import Runtime

__all__ = ["run"]

_CANCEL_WAIT = 5.0
"""Seconds to wait for cancelled commands to end before cleaning up."""


def split_words(
    words: Sequence[str], after_dashes: Sequence[str] | None, every: bool
) -> tuple[list[str], str]:
    """(host words, command): the hosts before ``--`` and the command after it; without
    ``--``, the first word is the host and the rest the command (as ``ssh`` takes them),
    or, with ``--all``, every word is the command.

    Raises:
        UsageError: no command, or a command with options and no ``--`` before it
            (which words were hosts, and which the command, is then a guess).
    """
    if after_dashes is not None:
        hosts, command_words = list(words), list(after_dashes)
    elif every:
        hosts, command_words = [], list(words)
    else:
        hosts, command_words = list(words[:1]), list(words[1:])
    if after_dashes is None and any(word.startswith("-") for word in command_words):
        shown = " ".join([*hosts, "--", *command_words]) if hosts else "-- " + " ".join(words)
        raise UsageError(
            "put -- between the hosts and a command with options: "
            f"actorcluster run {'--all ' if every else ''}{shown}"
        )
    command = " ".join(command_words).strip()
    for word in hosts:
        if word.startswith("-"):
            raise UsageError(f"no such option: {word} (see actorcluster run --help)")
    if not command:
        raise UsageError("no command given: actorcluster run HOST... -- COMMAND")
    return hosts, command


class _Run:
    """One ``run``: the commands started on the connected hosts, and their outcomes."""

    def __init__(self, streams: HostStreams | JsonResults, several: bool, debug: bool) -> None:
        self.streams = streams
        self.several = several
        self.debug = debug
        self.commands: dict[str, ShellCommand] = {}
        self.codes: dict[str, int] = {}

    def failed(self, host: str, problem: BaseException) -> None:
        """Record and report ``host``'s failure (with its traceback under ``--debug``)."""
        self.codes[host] = code_for(problem)
        if self.debug:
            traceback.print_exception(type(problem), problem, problem.__traceback__)
        if isinstance(self.streams, JsonResults):
            self.streams.failed(host, problem, self.codes[host])
            return
        error(f"{host}: {problem}" if self.several and host not in str(problem) else str(problem))

    def start(self, runtime: Runtime, command: str, stdin: IO[bytes] | None) -> None:
        host = runtime.host
        try:
            self.commands[host] = run_shell(
                runtime, command, on_output=self.streams.writer(host), stdin=stdin
            )
        except ActorClusterError as problem:
            self.failed(host, problem)

    def wait(self) -> None:
        """Wait for every command, taking each as it ends; record its exit code.

        Raises:
            BrokenPipeError: stdout's reader went away (every command is stopped).
        """
        hosts = {shell.future: host for host, shell in self.commands.items()}
        for future in as_completed(hosts):
            host = hosts[future]
            self.streams.finish(host)
            self._record(host, self.commands[host])

    def _record(self, host: str, shell: ShellCommand) -> None:
        problem = shell.future.exception(0)
        if isinstance(problem, BrokenPipeError):
            self.cancel()
            raise problem
        if problem is None:
            code = shell.future.result(0)
            self.codes[host] = code
            if isinstance(self.streams, JsonResults):
                self.streams.exited(host, code)
            elif code and self.several:
                note(f"{host}: exited with {code}")
            return
        self.failed(host, problem)

    def cancel(self) -> None:
        """Stop every command still running, and wait a bounded moment for them."""
        for shell in self.commands.values():
            shell.cancel()
        wait([shell.future for shell in self.commands.values()], timeout=_CANCEL_WAIT)

    def exit_code(self) -> int:
        """The command's code (several hosts: the highest)."""
        return max(self.codes.values(), default=int(ExitCode.OK))


def run_on_hosts(
    settings: Settings,
    hosts: Sequence[str],
    command: str,
    *,
    forward_stdin: bool,
    prefix: bool,
    as_json: bool = False,
) -> int:
    """Run ``command`` on ``hosts``; return the exit code (see the module docstring)."""
    several = len(hosts) > 1
    connected = settings.connect(hosts)
    streams: HostStreams | JsonResults = JsonResults() if as_json else HostStreams(prefix)
    state = _Run(streams, several, settings.debug)
    try:
        for host, problem in connected.errors.items():
            state.failed(host, problem)
        stdin = sys.stdin.buffer if forward_stdin and not several and sys.stdin else None
        for runtime in connected.runtimes.values():
            state.start(runtime, command, stdin)
        try:
            state.wait()
        except KeyboardInterrupt:
            state.cancel()
            raise
        return state.exit_code()
    finally:
        cleanup_all(connected.runtimes.values())


@click.command(
    short_help="A shell command on one host or many.",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog="Examples:\n\n\b\n  actorcluster run host-1 -- nvidia-smi -L\n"
    "  actorcluster run 'gpu-*' host-9 -- 'hostname; uptime'\n"
    "  actorcluster run --all -- df -h /\n"
    "  tar cz data | actorcluster run host-1 -- 'tar xz -C /tmp'",
)
@click.option("--all", "every", is_flag=True, help="Every Host of the ssh_config.")
@click.option("-n", "--no-stdin", is_flag=True, help="Do not forward stdin (with one host it is).")
@click.option(
    "--prefix/--no-prefix",
    default=None,
    help="Prefix each line with [host] (default: with several hosts).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per host as it ends: host, exit_code, stdout, stderr, "
    "seconds (and error for a host that failed).",
)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="HOST... -- COMMAND")
@click.pass_obj
def run(
    settings: Settings,
    words: tuple[str, ...],
    *,
    every: bool,
    no_stdin: bool,
    prefix: bool | None,
    as_json: bool,
) -> int:
    """Run a shell command on one host or many, in parallel.

    HOST is a name from the ssh_config, a host name, 'localhost', a comma-separated
    list, or a pattern ('gpu-*'). Put -- before a command with options. The command
    runs in the login's home directory through the login shell. Output streams live:
    stdout to stdout, stderr to stderr, prefixed with [host] when there are several
    hosts. With one host, stdin
    is forwarded to the command. The exit code is the command's (several hosts:
    the highest), and each host that failed gets a summary line on stderr.
    """
    host_words, command = split_words(words, settings.command, every)
    hosts = resolve_hosts(host_words, settings.ssh_config, every=every)
    prefixed = len(hosts) > 1 if prefix is None else prefix
    return run_on_hosts(
        settings, hosts, command, forward_stdin=not no_stdin, prefix=prefixed, as_json=as_json
    )
