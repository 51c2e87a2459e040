"""structlog set-up for the command line and the demo (never called by the library).

A library must leave logging configuration to the application that embeds it; only
our own entry points call :func:`configure_logging`.

``on_first_event=True`` (the command line at its default level, where most calls log
nothing) defers importing and configuring structlog (~30 ms of a short command: it
imports asyncio, and rich) until the library logs an event at that level: the event
goes through the same pipeline, as if structlog had been configured all along.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import structlog

__all__ = ["configure_logging"]

_LIBRARY = "actorcluster"


def configure_logging(
    level: str = "info", json: bool | None = None, *, on_first_event: bool = False
) -> None:
    """Send structlog events to stderr: a console renderer on a terminal, JSON lines
    otherwise (or as ``json`` says).

    Args:
        level: the lowest level shown (``debug``, ``info``, ``warning``, ...).
        json: force JSON lines (True) or the console renderer (False).
        on_first_event: configure structlog only once the library logs an event at
            ``level`` or above (see the module docstring).
    """
    configured = getattr(sys.modules.get("structlog"), "is_configured", lambda: False)()
    library = logging.getLogger(_LIBRARY)
    for waiting in [h for h in library.handlers if isinstance(h, _OnFirstEvent)]:
        library.removeHandler(waiting)  # a keeper configures once per call
    if on_first_event and not configured:
        library.setLevel(logging.getLevelName(level.upper()))
        library.addHandler(_OnFirstEvent(level, json))
        return
    import structlog

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


class _OnFirstEvent(logging.Handler):
    """On the library's first event that is shown: configure structlog, pass the
    event on to it, and step aside (the library logs through structlog from then on)."""

    def __init__(self, level: str, json: bool | None) -> None:
        super().__init__(logging.getLevelName(level.upper()))
        self._settings = (level, json)

    def emit(self, record: logging.LogRecord) -> None:
        """Configure structlog and log ``record``'s event through it."""
        import structlog

        if not structlog.is_configured():
            configure_logging(*self._settings)
        logging.getLogger(_LIBRARY).removeHandler(self)
        method = record.levelname.lower()
        if record.exc_info and record.levelno == logging.ERROR:
            method = "exception"
        event = getattr(record, "event", None) or record.getMessage()
        fields = getattr(record, "fields", None) or {}
        logger = structlog.get_logger(record.name)
        getattr(logger, method, logger.error)(event, **fields)
