"""Where the time goes in actorcluster's hot paths: a profile of every thread.

``python3 benchmarks/profile_hotpaths.py [PATH ...] [--agent] [--clock cpu|wall]
[--top N] [--out DIR]``, PATH among command, function, connect, send, get, tasks
(default: all). Each path runs against a private bed under yappi (every thread: the
caller, pykka's actor threads, the agent client's reader, paramiko's transport), and
the functions with the most self time are printed. ``--agent`` also profiles the
remote agent (its python becomes a wrapper that runs it under yappi) and prints its
top functions. Not a benchmark: profiling slows everything, so compare shares, not
totals. yappi lives in a virtualenv of its own (``/tmp/acbench-prof-venv``, made on
first use, with this Python's packages visible); the script re-runs itself there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _benchlib
from _benchlib import ssh_bed
from _peers import ensure_venv
from actorcluster import Runtime, RuntimeTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from sshbed import SshBed

PROFILE_VENV = Path("/tmp/acbench-prof-venv")
PATHS = ("command", "function", "connect", "send", "get", "tasks")
BIG = 200 * 1000 * 1000
PREFIX = str(Path(os.__file__).parent) + "/"


def _ensure_yappi() -> None:
    try:
        import yappi  # noqa: F401
    except ImportError:
        python = ensure_venv(PROFILE_VENV, ["yappi"], system_site=True)
        os.execv(str(python), [str(python), *sys.argv])


def _one() -> int:
    return 1


def _command(runtimes: list[Runtime], work: Path) -> str:
    for _ in range(200):
        runtimes[0].execute_task(RuntimeTask().run_command("true"), execute_async=False)
    return "200 x run_command('true'), synchronous"


def _function(runtimes: list[Runtime], work: Path) -> str:
    for _ in range(200):
        runtimes[0].execute_function(_one)
    return "200 x execute_function(lambda: 1), synchronous"


def _send(runtimes: list[Runtime], work: Path) -> str:
    runtimes[0].send_file(str(work / "big.bin"), str(work / "sent.bin"))
    return "send_file of 200 MB"


def _get(runtimes: list[Runtime], work: Path) -> str:
    if not (work / "sent.bin").exists():
        shutil.copy(work / "big.bin", work / "sent.bin")  # the "host" is this machine
    runtimes[0].get_file(str(work / "sent.bin"), str(work / "back.bin"))
    return "get_file of 200 MB"


def _tasks(runtimes: list[Runtime], work: Path) -> str:
    futures = [
        runtimes[i % len(runtimes)].execute_task(RuntimeTask().run_command("true"))
        for i in range(1000)
    ]
    for future in futures:
        assert future is not None
        future.get(timeout=120)
    return "1,000 run_command('true') in flight over 3 runtimes"


def _profile(title: str, call: Callable[[], str], args: argparse.Namespace) -> None:
    import yappi

    yappi.clear_stats()
    yappi.set_clock_type(args.clock)
    started = time.perf_counter()
    yappi.start(builtins=False, profile_threads=True)
    try:
        what = call()
    finally:
        yappi.stop()
    seconds = time.perf_counter() - started
    stats = yappi.get_func_stats()
    stats.sort("tsub", "desc")
    total = sum(stat.tsub for stat in stats)
    print(
        f"\n===== {title}: {what}: {seconds:.2f} s under the profiler; "
        f"{total:.2f} s {args.clock} time in all client threads"
    )
    print(f"  {'self s':>8} {'share':>6} {'cum s':>8} {'calls':>9}  function")
    for stat in list(stats)[: args.top]:
        where = f"{Path(stat.module).name}:{stat.lineno} {stat.name}"
        share = stat.tsub / total * 100 if total else 0.0
        print(f"  {stat.tsub:8.3f} {share:5.1f}% {stat.ttot:8.3f} {stat.ncall:9d}  {where}")
    for thread in yappi.get_thread_stats():
        if thread.ttot > 0.05 * seconds:
            print(f"  thread {thread.name:<40} {thread.ttot:8.3f} s")


def _agent_python(folder: Path, clock: str) -> str:
    """A wrapper that runs the agent's first stage under yappi (see _agent_profiler.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "agent-python"
    script = Path(__file__).with_name("_agent_profiler.py")
    wrapper.write_text(
        f"#!/bin/sh\nexport ACBENCH_AGENT_PROFILE_DIR={folder} ACBENCH_PROFILE_CLOCK={clock}\n"
        f'exec {sys.executable} {script} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def _kwargs(bed: SshBed, work: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(bed.connection_kwargs)
    if args.agent:
        kwargs["python"] = _agent_python(work / f"agent-{name}", args.clock)
    return kwargs


TABLE: dict[str, Callable[[list[Runtime], Path], str]] = {
    "command": _command,
    "function": _function,
    "send": _send,
    "get": _get,
    "tasks": _tasks,
}


def _run_paths(bed: SshBed, work: Path, args: argparse.Namespace) -> None:
    if "connect" in args.paths:
        kwargs = _kwargs(bed, work, "connect", args)
        _profile("connect", lambda: _connect(kwargs), args)
        if args.agent:
            _print_agent_profiles(work / "agent-connect", args.top, 10, first_only=True)
    if "send" in args.paths or "get" in args.paths:
        _make_big(work / "big.bin")
    for name, path in TABLE.items():
        if name not in args.paths:
            continue
        kwargs = _kwargs(bed, work, name, args)
        hosts = bed.hosts if name == "tasks" else bed.hosts[:1]
        runtimes = [Runtime(host.name, connection_kwargs=kwargs) for host in hosts]
        try:
            runtimes[0].execute_task(RuntimeTask().run_command("true"), execute_async=False)
            _profile(name, lambda p=path, r=runtimes: p(r, work), args)  # type: ignore[misc]
        finally:
            for runtime in runtimes:
                runtime.cleanup()
        if args.agent:
            _print_agent_profiles(work / f"agent-{name}", args.top, len(runtimes))


def _connect(kwargs: dict[str, Any]) -> str:
    for _ in range(10):
        Runtime("host-1", connection_kwargs=kwargs).cleanup()
    return "10 x Runtime('host-1') + cleanup()"


def _make_big(path: Path) -> None:
    with path.open("wb") as out:
        for _ in range(BIG // (8 * 1000 * 1000)):
            out.write(os.urandom(8 * 1000 * 1000))


def _print_agent_profiles(folder: Path, top: int, expect: int, *, first_only: bool = False) -> None:
    deadline = time.monotonic() + 20
    while len(list(folder.glob("agent-*.txt"))) < expect and time.monotonic() < deadline:
        time.sleep(0.1)  # each agent writes its profile as it exits, after cleanup()
    for path in sorted(folder.glob("agent-*.txt"))[: 1 if first_only else None]:
        lines = [line.replace(PREFIX, "") for line in path.read_text().splitlines()]
        print(f"\n----- agent {path.stem} ({folder.name}): top {top} by self time, all threads")
        print("\n".join(lines[2 : top + 4]))


def main() -> None:
    """Parse the arguments, start a bed, profile each path asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help=f"among {', '.join(PATHS)} (default: all)")
    parser.add_argument("--agent", action="store_true", help="profile the remote agent too")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    args.paths = set(args.paths or PATHS)
    if args.paths - set(PATHS):
        parser.error(f"unknown paths {sorted(args.paths - set(PATHS))}; choose among {PATHS}")
    _ensure_yappi()
    _benchlib.quiet_logging()
    with ssh_bed(3) as bed, tempfile.TemporaryDirectory(prefix="acbench-prof-") as folder:
        _run_paths(bed, Path(folder), args)


if __name__ == "__main__":
    main()
