"""The library's loggers: structlog-style events into standard ``logging`` loggers.

A library leaves logging to the application, so events go where Python's logging
convention says: each module's events go to the standard ``logging`` logger named
after it (``actorcluster.actors.agent``, ...), rendered as one line
``event key=value ...`` with the event's fields also on the record (``record.event``,
``record.fields``). Nothing is configured here: until the application configures
logging, Python's last-resort handler shows warnings and errors on stderr and nothing
else; ``logging.getLogger("actorcluster").setLevel(logging.ERROR)`` silences warnings,
``logging.basicConfig(level=logging.DEBUG)`` shows everything.

Once the application configures structlog (``structlog.is_configured()``, which
``structlog.testing.capture_logs`` also makes true), every event goes through the
application's structlog pipeline instead, which decides what is shown (and may render
into ``logging`` itself: ``structlog.stdlib.LoggerFactory``).

A level that is off costs one check: the event's fields are not even formatted, and
under a structlog configuration whose wrapper filters by level
(``structlog.make_filtering_bound_logger``, whose methods for the levels it drops do
nothing) no logger is made or bound either.

structlog itself is not imported here: an application that configured it has imported
it, so one that has not imported it has not configured it either (importing structlog
costs a program ~30 ms: it imports asyncio, and rich where installed).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from actorcluster.errors import ActorClusterError

__all__ = ["LibraryLogger", "get_logger", "quiet_expected_actor_failures"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}
_dropped: list[Any] = []
"""What a filtering structlog wrapper has for each level it drops (a no-op), once
structlog is configured."""


def _configured_structlog() -> Any:
    """The structlog module, if the application configured it; else None."""
    module = sys.modules.get("structlog")
    is_configured = getattr(module, "is_configured", None)  # None: not (fully) imported
    if is_configured is None or not is_configured():
        return None
    if not _dropped:
        _dropped.append(module.make_filtering_bound_logger(logging.CRITICAL).debug)  # type: ignore[union-attr]
    return module


class LibraryLogger:
    """A structlog-style logger (``bind``, ``debug`` ... ``exception``) for library code."""

    __slots__ = ("_bound", "_name", "_stdlib")

    def __init__(self, name: str, bound: dict[str, Any] | None = None) -> None:
        self._name = name
        self._bound = bound or {}
        self._stdlib = logging.getLogger(name)

    def bind(self, **values: Any) -> LibraryLogger:
        """A logger that adds ``values`` to every event."""
        return LibraryLogger(self._name, {**self._bound, **values})

    def _emit(self, method: str, event: str, values: dict[str, Any]) -> None:
        structlog = _configured_structlog()
        if structlog is not None:
            wrapper = structlog.get_config()["wrapper_class"]
            if getattr(wrapper, method, None) is _dropped[0]:
                return  # the application's wrapper drops this level: nothing to build
            fields = {**self._bound, **values}
            getattr(structlog.get_logger(self._name), method)(event, **fields)
            return
        level = _LEVELS[method]
        if not self._stdlib.isEnabledFor(level):
            return
        fields = {**self._bound, **values}
        text = " ".join([event, *(f"{key}={value!r}" for key, value in fields.items())])
        self._stdlib.log(
            level,
            "%s",
            text,
            exc_info=method == "exception",
            extra={"event": event, "fields": fields},
            stacklevel=3,
        )

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
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ActorClusterError)


def quiet_expected_actor_failures() -> None:
    """Install :class:`_ExpectedFailureFilter` on pykka's logger (once)."""
    pykka_logger = logging.getLogger("pykka")
    if not any(isinstance(f, _ExpectedFailureFilter) for f in pykka_logger.filters):
        pykka_logger.addFilter(_ExpectedFailureFilter())
