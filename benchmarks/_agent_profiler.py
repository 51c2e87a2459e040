"""Runs the remote agent's first stage under yappi; writes its profile when it exits.

``profile_hotpaths.py --agent`` starts runtimes whose ``python`` is a wrapper script
that runs ``<python with yappi> _agent_profiler.py -c <first stage>``. The agent ends
with ``os._exit``, which skips every exit hook, so this module wraps ``os._exit`` to
write the profile (every thread, self time first) to ``$ACBENCH_AGENT_PROFILE_DIR``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import yappi


def _dump() -> None:
    yappi.stop()
    folder = Path(os.environ.get("ACBENCH_AGENT_PROFILE_DIR", "/tmp"))
    path = folder / f"agent-{os.getpid()}.txt"
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        stats = yappi.get_func_stats()
        stats.sort("tsub", "desc")
        stats.print_all(
            out=out, columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)}
        )
        yappi.get_thread_stats().print_all(out=out)
    temporary.rename(path)  # whole files only: the reader waits for this name


def main() -> None:
    """Start yappi, wrap ``os._exit``, then run the first stage given with ``-c``."""
    if sys.argv[1:2] != ["-c"] or len(sys.argv) < 3:
        raise SystemExit("usage: _agent_profiler.py -c CODE")
    yappi.set_clock_type(os.environ.get("ACBENCH_PROFILE_CLOCK", "cpu"))
    yappi.start(builtins=False, profile_threads=True)
    real_exit = os._exit

    def exit_with_profile(code: int) -> NoReturn:
        try:
            _dump()
        finally:
            real_exit(code)

    os._exit = exit_with_profile  # type: ignore[assignment]
    code = sys.argv[2]
    sys.argv = ["-c"]
    exec(compile(code, "<first-stage>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main()
