"""Every timeout and size limit of the client, each defined once, and :class:`Deadline`.

A leaf module (the standard library only), so any module may import it. The values are
defaults: a runtime's ``connection_kwargs`` and most calls' ``timeout=`` override them.
The shipped agent (``remote/agent/``) keeps its own: it is sent to hosts alone and
imports nothing of the client.

A wait that spans several steps gives them one :class:`Deadline`, not a time computed
by hand at each: ``deadline = Deadline(timeout)`` once, then ``deadline.timeout()`` for
each wait (None when unbounded), ``deadline.expired()`` to stop a loop, and
``deadline.check(make_error)`` to raise the caller's own typed timeout error.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "AGENT_KILL_TIMEOUT",
    "AGENT_START_TIMEOUT",
    "ASK_TIMEOUT",
    "CANCEL_GRACE",
    "CLUSTER_STOP_TIMEOUT",
    "GROUP_STOP_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "HOST_TEXT_SHOWN",
    "KEEPER_START_TIMEOUT",
    "MAX_ENV_TOTAL",
    "MAX_ENV_VARIABLE",
    "MAX_MODULE_SIZE",
    "MAX_MODULE_SIZE_ALLOWED",
    "MAX_RETURN_SIZE",
    "MODULE_BUNDLE_BYTES",
    "OBSERVER_START_TIMEOUT",
    "PROCESS_STOP_TIMEOUT",
    "PROCESS_TAIL_BYTES",
    "REATTACH_TIMEOUT",
    "RECONNECT_WAIT",
    "REQUEST_TIMEOUT",
    "SESSION_GRACE",
    "START_TIMEOUT",
    "STOP_GRACE",
    "TUNNEL_CONNECT_TIMEOUT",
    "TUNNEL_TIMEOUT",
    "Deadline",
]

# --- asking the actors ----------------------------------------------------------------

ASK_TIMEOUT = 60.0
"""Seconds a call waits for a supervisor's or a coordinator's answer (a runtime's
handle, a group's tree, a cluster's coordinator, a supervised process)."""

REQUEST_TIMEOUT = 60.0
"""Seconds a request to a host may take (host facts, a tunnel's opening, a cluster's
probes); for a group-wide request, all hosts together."""

# --- a runtime and its agent ----------------------------------------------------------

START_TIMEOUT = 120.0
"""Seconds a runtime may take to come up (each phase has its own, shorter, limit)."""

AGENT_START_TIMEOUT = 30.0
"""Seconds the agent may take to start and say its marker (``agent_start_timeout``)."""

HEARTBEAT_INTERVAL = 2.0
"""Seconds between pings to the agent (``heartbeat_interval``)."""

HEARTBEAT_TIMEOUT = 10.0
"""Seconds of silence after which the host counts as lost (``heartbeat_timeout``)."""

RECONNECT_WAIT = 10.0
"""Seconds a new request waits for a reconnect under way before it fails
(``reconnect_wait``)."""

SESSION_GRACE = 15.0
"""Seconds the agent's session waits for a re-attach after its stream is lost
(``session_grace``)."""

REATTACH_TIMEOUT = 10.0
"""Seconds (at least) a running agent gets to answer a re-attach."""

AGENT_KILL_TIMEOUT = 5.0
"""Seconds the kill of an agent by pid may take on the host."""

CANCEL_GRACE = 5.0
"""Seconds a cancelled task waits for the host to confirm its step stopped."""

# --- processes, groups, clusters, tunnels ---------------------------------------------

PROCESS_STOP_TIMEOUT = 15.0
"""Seconds stopping a supervised process waits for its command to be gone."""

STOP_GRACE = 5.0
"""Seconds a stopped local process (and its children) get after SIGTERM before SIGKILL."""

GROUP_STOP_TIMEOUT = 120.0
"""Seconds a group's runtimes get to stop, all of them (each has its own, shorter, limit)."""

CLUSTER_STOP_TIMEOUT = 20.0
"""Seconds the processes of one cluster stop (all workers, say) get to be gone."""

TUNNEL_TIMEOUT = 120.0
"""Seconds the tunnels a cluster opens (or closes) at once get in all."""

TUNNEL_CONNECT_TIMEOUT = 10.0
"""Seconds a tunnel's forwarder waits for the connection at its far end."""

# --- the command line and the web view -------------------------------------------------

KEEPER_START_TIMEOUT = 30.0
"""Seconds a new connection keeper may take to listen (it imports the library first)."""

OBSERVER_START_TIMEOUT = 15.0
"""Seconds the observer's web view gets to listen."""

# --- sizes ----------------------------------------------------------------------------

HOST_TEXT_SHOWN = 4000
"""At most this many characters of a host's text go into an error's message."""

MAX_RETURN_SIZE = 16 * 1024 * 1024
"""Bytes a function's return value may take once loaded (``max_return_size``)."""

MAX_MODULE_SIZE = 4 * 1024 * 1024
"""Bytes of source a module sent to a host may have (``ship_modules_max_size``)."""

MAX_MODULE_SIZE_ALLOWED = 32 * 1024 * 1024
"""The largest ``ship_modules_max_size`` a user may set (a module travels in one frame)."""

MODULE_BUNDLE_BYTES = 16 * 1024 * 1024
"""Bytes of sources one answer to a module request carries at most."""

MAX_ENV_VARIABLE = 128 * 1024
"""Bytes one environment variable of a task may have."""

MAX_ENV_TOTAL = 4 * 1024 * 1024
"""Bytes a task's environment may have in all."""

PROCESS_TAIL_BYTES = 256 * 1024
"""Bytes of a supervised process's last output kept for its errors and status."""


class Deadline:
    """A point in time some seconds from now, or never (``seconds=None``).

    Args:
        seconds: how long from now; None: no deadline.
        clock: the clock read (``time.monotonic``; a test may give its own).
    """

    __slots__ = ("_clock", "_end", "seconds")

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        """The seconds it was set for (None: unbounded)."""
        self._clock = clock
        self._end = math.inf if seconds is None else clock() + seconds

    def remaining(self, floor: float = 0.0) -> float:
        """Seconds left (at least ``floor``); ``math.inf`` when unbounded."""
        return max(floor, self._end - self._clock())

    def timeout(self, floor: float = 0.0) -> float | None:
        """What to pass a wait's ``timeout=``: the seconds left (at least ``floor``),
        None when unbounded."""
        return None if self.seconds is None else self.remaining(floor)

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._clock() >= self._end

    def check(self, make_error: Callable[[], BaseException]) -> None:
        """Raise ``make_error()`` (the caller's typed timeout error) if the deadline has
        passed.

        Raises:
            BaseException: what ``make_error`` returns, once the deadline has passed.
        """
        if self.expired():
            raise make_error()

    def __repr__(self) -> str:
        left = "unbounded" if self.seconds is None else f"{self.remaining():.3f} s left"
        return f"<Deadline {left}>"
