"""The ``actorcluster`` command line: hosts, run, put, get, info, dask, demo, keeper.

Built on click; rich output on a terminal, plain parseable output otherwise. Each
command is a module here; :func:`main` is the entry point (``actorcluster =
"actorcluster.cli:main"``) and maps every expected failure to a message and an exit
code (:class:`~actorcluster.cli.exits.ExitCode`). It configures logging (the library
never does).

:func:`main` first offers the call to the user's connection keeper
(:mod:`actorcluster.cli.keeper_client`, standard library only, so a call it serves
imports neither click nor the library); otherwise the call runs here
(:func:`actorcluster.cli.app.main`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing itself is not imported: a call the keeper serves needs it not
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from actorcluster.cli.app import cli
    from actorcluster.cli.exits import ExitCode

__all__ = ["ExitCode", "cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv``: the arguments, default ``sys.argv[1:]``) through
    the keeper when one serves it, else here; returns the exit status."""
    from actorcluster.keeper.paths import keeper_wanted, parse_call

    args = list(sys.argv[1:] if argv is None else argv)
    if keeper_wanted(parse_call(args)):
        from actorcluster.cli.keeper_client import through_keeper

        try:
            code = through_keeper(args)
        except KeyboardInterrupt:  # while the keeper started: nothing ran yet
            from actorcluster.cli.console import note
            from actorcluster.cli.exits import ExitCode

            note("interrupted; everything started was stopped")
            return int(ExitCode.INTERRUPTED)
        if code is not None:
            return code
    from actorcluster.cli.app import main as run_here

    code = run_here(args)
    if argv is None:  # the program itself (the ``actorcluster`` script), not a caller's call
        _exit_at_once(code)
    return code


def _exit_at_once(code: int) -> None:
    """End the process with ``code`` without the interpreter's teardown of the ~600
    modules a command loaded (~50 ms of CPU, a tenth of a cold ``run``): the exit hooks
    run first, as at any exit (the supervision tree stops, cleaning every runtime up),
    then stdout and stderr are flushed. Returns instead (the exit goes the usual way)
    where it could not end alike: a thread the exit would wait for still runs, this
    Python has no runner for the hooks, or the output cannot be flushed."""
    import atexit
    import os
    import threading

    run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)
    main_thread = threading.main_thread()
    waited = [t for t in threading.enumerate() if t is not main_thread and not t.daemon]
    if run_exit_hooks is None or waited:
        return
    run_exit_hooks()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def __getattr__(name: str) -> Any:
    """``cli`` (the click group) and ``ExitCode``, imported on first use."""
    if name == "cli":
        from actorcluster.cli.app import cli

        return cli
    if name == "ExitCode":
        from actorcluster.cli.exits import ExitCode

        return ExitCode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
