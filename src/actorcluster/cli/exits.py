"""The command line's exit codes, and which error gives which.

A remote command's own exit code passes through unchanged (128 + N when a signal N
killed it, as shells report it), so the codes of the command line itself stay out of
the range commands commonly use: they are the BSD ``sysexits.h`` codes where one fits.
"""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_HELP", "ExitCode", "code_for"]


class ExitCode(enum.IntEnum):
    """What the command line's own exit codes mean."""

    OK = 0
    """Everything succeeded."""
    FAILED = 1
    """An operation failed (a transfer, a host's error); the message says why."""
    USAGE = 64
    """Bad arguments, options or configuration (``EX_USAGE``)."""
    UNREACHABLE = 68
    """A host is unknown, unreachable, or was lost (``EX_NOHOST``)."""
    AUTHENTICATION = 77
    """A host refused our keys, or its host key was refused (``EX_NOPERM``)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT): what was started was stopped and cleaned up."""
    BROKEN_PIPE = 141
    """The reader of the output went away (``| head``; 128 + SIGPIPE)."""


EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  N    run: the remote command's exit code (several hosts: the highest;
       128+N when signal N killed it)
  1    an operation failed (a transfer, an error on the host)
  64   usage: bad arguments, options or configuration
  68   a host is unknown, unreachable or was lost
  77   authentication failed or a host key was refused
  130  interrupted (Ctrl-C): everything started was stopped
  141  the output's reader went away (| head)"""
"""The exit codes as ``--help`` shows them (``\\b`` keeps click from rewrapping)."""


def code_for(error: BaseException) -> ExitCode:
    """The exit code an error ends the command line with."""
    from actorcluster.errors import (
        AuthenticationError,
        HostKeyError,
        HostUnreachableError,
        InvalidRuntimeError,
        NoRuntimesDetectedError,
        TaskCancelledError,
        UsageError,
    )

    if isinstance(error, (AuthenticationError, HostKeyError)):
        return ExitCode.AUTHENTICATION
    if isinstance(error, (HostUnreachableError, InvalidRuntimeError, NoRuntimesDetectedError)):
        return ExitCode.UNREACHABLE
    if isinstance(error, TaskCancelledError):
        return ExitCode.INTERRUPTED
    if isinstance(error, UsageError):
        return ExitCode.USAGE
    return ExitCode.FAILED
