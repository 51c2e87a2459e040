"""structlog set-up for the command line and the demo (never called by the library).

A library must leave logging configuration to the application that embeds it; only
our own entry points call :func:`configure_logging`.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Send structlog events to stderr: a console renderer on a terminal, JSON lines
    otherwise (or as ``json`` says).

    Args:
        level: the lowest level shown (``debug``, ``info``, ``warning``, ...).
        json: force JSON lines (True) or the console renderer (False).
    """
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
