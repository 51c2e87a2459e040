"""Which threads a test left behind, the process's shared workers aside.

The actor pool's workers, the shared timer thread and the module workers serve the
whole process and end by themselves once idle (``test_actor_pool.py`` checks that); any other thread
a test started and did not end is a leak.
"""

from __future__ import annotations

import threading

__all__ = ["SHARED_PREFIXES", "leaked_threads"]

SHARED_PREFIXES = ("actorcluster-actor", "actorcluster-timers", "actorcluster-modules")
"""Name prefixes of the process's shared threads."""


def leaked_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    """Threads alive now that were not in ``before``, shared workers excluded."""
    return {
        thread
        for thread in set(threading.enumerate()) - before
        if not thread.name.startswith(SHARED_PREFIXES)
    }
