"""The ``actorcluster`` command line: hosts, run, put, get, info, dask, demo.

Built on click; rich output on a terminal, plain parseable output otherwise. Each
command is a module here; :func:`main` is the entry point (``actorcluster =
"actorcluster.cli:main"``) and maps every expected failure to a message and an exit
code (:class:`~actorcluster.cli.exits.ExitCode`). It configures logging (the library
never does).
"""

from __future__ import annotations

from actorcluster.cli.app import cli, main
from actorcluster.cli.exits import ExitCode

__all__ = ["ExitCode", "cli", "main"]
