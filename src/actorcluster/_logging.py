"""The library's loggers: structlog when the application configured it, quiet otherwise.

The library never calls ``structlog.configure``: the application owns that. But an
unconfigured structlog prints every event, debug included, to stdout, which would
flood a notebook or corrupt a script's output. So until the application configures
structlog, our events below WARNING are dropped and the rest go to stderr; once it is
configured (``structlog.is_configured()``, which ``structlog.testing.capture_logs``
also makes true), every event goes through the application's configuration.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["LibraryLogger", "get_logger", "quiet_expected_actor_failures"]

_LEVELS = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
}
_QUIET_BELOW = 30


class LibraryLogger:
    """A structlog-style logger (``bind``, ``debug`` ... ``exception``) for library code."""

    __slots__ = ("_bound", "_name")

    def __init__(self, name: str, bound: dict[str, Any] | None = None) -> None:
        self._name = name
        self._bound = bound or {}

    def bind(self, **values: Any) -> LibraryLogger:
        """A logger that adds ``values`` to every event."""
        return LibraryLogger(self._name, {**self._bound, **values})

    def _emit(self, method: str, event: str, values: dict[str, Any]) -> None:
        if structlog.is_configured():
            logger = structlog.get_logger(self._name).bind(**self._bound)
            getattr(logger, method)(event, **values)
            return
        if _LEVELS[method] < _QUIET_BELOW:
            return
        fields = " ".join(f"{key}={value!r}" for key, value in {**self._bound, **values}.items())
        print(f"[{method}] {event} {fields}".rstrip(), file=sys.stderr)

    def debug(self, event: str, **values: Any) -> None:
        """Log at debug level."""
        self._emit("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        """Log at info level."""
        self._emit("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        """Log at warning level."""
        self._emit("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        """Log at error level."""
        self._emit("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """Log at error level with the exception being handled."""
        self._emit("exception", event, values)


def get_logger(name: str) -> LibraryLogger:
    """The logger for a library module (``log = get_logger(__name__)``)."""
    return LibraryLogger(name)


class _ExpectedFailureFilter(logging.Filter):
    """Drops pykka's "Unhandled exception in <actor>" records for our own errors.

    A supervised actor that crashes with an :class:`ActorClusterError` (a lost host, an
    agent that did not start) is an expected event: its supervisor logs it as a
    structured ``supervisor.child.exited`` event and restarts it, and the caller gets the
    typed error. pykka would also print the traceback at ERROR level through stdlib
    logging. Bugs (any other exception) still reach pykka's log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from actorcluster.errors import ActorClusterError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ActorClusterError)


def quiet_expected_actor_failures() -> None:
    """Install :class:`_ExpectedFailureFilter` on pykka's logger (once)."""
    pykka_logger = logging.getLogger("pykka")
    if not any(isinstance(f, _ExpectedFailureFilter) for f in pykka_logger.filters):
        pykka_logger.addFilter(_ExpectedFailureFilter())
