"""What a chaos run writes when the Dask cluster is not whole again: the supervision
tree (each actor's statistics, each runtime's state, each process's record) and every
thread's stack, so a wait that is never woken or an actor stuck in a call shows where.

Written to ``ACTORCLUSTER_CHAOS_DUMP`` (a folder) if set, else to the system's
temporary folder; the path goes into the failure's message.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

__all__ = ["dump_state"]


def dump_state(why: str) -> str:
    """Write the tree and the thread stacks; return the file's path."""
    from actorcluster.observe.snapshots import take_snapshot
    from actorcluster.supervisors import root_supervisor

    folder = Path(os.environ.get("ACTORCLUSTER_CHAOS_DUMP") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chaos-dump-{os.getpid()}-{time.time():.0f}.txt"
    parts = [f"why: {why}\n"]
    try:
        snapshot = take_snapshot(root_supervisor())
        parts.append(json.dumps(snapshot, indent=1, default=str))
    except Exception as exc:  # a dump must not hide the failure it describes
        parts.append(f"no snapshot: {exc!r}")
    for ident, frame in sys._current_frames().items():
        parts.append(f"\n--- thread {ident}\n" + "".join(traceback.format_stack(frame)))
    path.write_text("\n".join(parts))
    return str(path)
