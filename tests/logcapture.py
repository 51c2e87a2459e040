"""``captured_logs()``: structlog's ``capture_logs`` that leaves structlog as it found it.

``structlog.testing.capture_logs`` leaves structlog *configured* when it ends, and the
library then sends every later event through structlog's default printer to stdout
(see ``actorcluster._logging``), which changes what later tests see. This one resets
structlog to its defaults afterwards if it was not configured before.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from structlog.testing import capture_logs

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["captured_logs"]


@contextlib.contextmanager
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog events (as ``capture_logs`` does), then undo its configuration."""
    configured = structlog.is_configured()
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        if not configured:
            structlog.reset_defaults()
