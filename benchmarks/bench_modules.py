"""Module shipping (issue 17): what a function pays for modules only the client has.

``python3 benchmarks/bench_modules.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of one sshd host and, on it and on the localhost runtime, measures:

- first call: a function importing a package of :data:`MODULES` modules that only the
  client has (a fresh package each time, so each call is a first one), against the
  same import where the host has the package on disk already (shipping off), and the
  user's workaround without shipping (``send_file`` of the package folder, then the
  call); with the agent's round trip (a PING) for scale. The target: at most one extra
  round trip per module, counted (MODULE requests the client answered per module
  imported) and timed (the time over the on-disk import, per module, against a PING);
- later calls: the same function again (the modules are on the host now) against a
  function that imports nothing: the target is nothing extra, counted (no request)
  and timed.

PARTS for ``--skip``: localhost, ssh, peer. ``--quick`` (``BENCH_QUICK=1``): one call of
each.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed, time_calls
from actorcluster import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable

MODULES = 5
"""Modules in each package: the package, and the four it imports."""
FIRSTS = 30
"""First calls measured (each on a package of its own)."""
LATER = 200
"""Later calls measured."""
PINGS = 200
_names = itertools.count()


def _ms(values: list[float]) -> list[float]:
    return [value * 1000 for value in values]


def _write_package(root: Path, name: str) -> None:
    """Package ``name``: an ``__init__`` importing four modules, each a few functions."""
    package = root / name
    package.mkdir(parents=True)
    parts = [f"part{n}" for n in range(MODULES - 1)]
    init = "".join(f"from . import {part}\n" for part in parts)
    (package / "__init__.py").write_text(
        init + "TOTAL = " + " + ".join(f"{p}.VALUE" for p in parts) + "\n"
    )
    for number, part in enumerate(parts):
        body = "".join(f"def f{k}(x):\n    return x * {k} + {number}\n\n" for k in range(20))
        (package / f"{part}.py").write_text(f"VALUE = {number}\n\n{body}")


def _importer(name: str) -> Callable[[], int]:
    """A function whose body imports package ``name`` (pickled by value)."""
    # Defined in __main__, as a script's or notebook's function is: pickled by value.
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(f"def use():\n    import {name}\n    return {name}.TOTAL\n", namespace)
    function: Callable[[], int] = namespace["use"]
    return function


def _call(runtime: Runtime, function: Callable[[], object]) -> object:
    return next(iter(runtime.execute_function(function).function_returns))


EVENTS = _benchlib.EventCounter()
"""The library's log events, counted: each answered MODULE request logs one
``modules.answered`` (public API only, no private state read)."""
ANSWERED = ("modules.answered",)


def _asked() -> int:
    """MODULE requests answered so far, by every runtime of this process."""
    return EVENTS.get(*ANSWERED)


def _ping_ms(runtime: Runtime) -> list[float]:
    """``is_valid_runtime()``: one PING to the agent and its answer."""
    return _ms(time_calls(runtime.is_valid_runtime, PINGS, warmup=10))


def _firsts(runtime: Runtime, root: Path, prefix: str) -> tuple[list[float], int]:
    """Seconds of first calls (a new client-only package each), and requests answered."""
    asked = _asked()
    samples = []
    for _ in range(FIRSTS):
        name = f"{prefix}{next(_names)}"
        _write_package(root, name)
        function = _importer(name)
        samples += time_calls(lambda f=function: _call(runtime, f), 1, warmup=0)
    return samples, _asked() - asked


def _on_disk(runtime: Runtime, root: Path, prefix: str) -> list[float]:
    """Seconds of first imports of packages the host has on disk (sent beforehand)."""
    names = [f"{prefix}{next(_names)}" for _ in range(FIRSTS)]
    for name in names:
        _write_package(root, name)
        runtime.send_file(str(root / name), name)
    samples = []
    for name in names:
        function = _importer(name)
        samples += time_calls(lambda f=function: _call(runtime, f), 1, warmup=0)
    return samples


def _workaround(runtime: Runtime, root: Path, prefix: str) -> list[float]:
    """The user's way without shipping: send the package folder, then call."""
    samples = []
    for _ in range(FIRSTS):
        name = f"{prefix}{next(_names)}"
        _write_package(root, name)
        function = _importer(name)

        def both(name: str = name, function: Callable[[], int] = function) -> None:
            runtime.send_file(str(root / name), name)
            _call(runtime, function)

        samples += time_calls(both, 1, warmup=0)
    return samples


def measure(report: Report, host: str, kwargs: dict[str, Any], args: Any, root: Path) -> None:
    """Both sections for one host."""
    shipping = Runtime(host, connection_kwargs=kwargs)
    plain = Runtime(host, connection_kwargs={**kwargs, "ship_modules": False})
    try:
        _call(shipping, lambda: None)
        _call(plain, lambda: None)
        ping = shipping_ping = _ping_ms(shipping)
        first, asked = _firsts(shipping, root, f"ship_{host.replace('-', '_')}_")
        disk = _on_disk(plain, root, f"disk_{host.replace('-', '_')}_")
        section = report.section(
            f"{host}: first call importing {MODULES} client-only modules",
            "ms",
            higher_is_better=False,
        )
        ours = section.add("ours: shipped on demand", _ms(first), ours=True, label="shipped")
        section.add("host has it on disk (shipping off)", _ms(disk), reference=True)
        section.add("agent round trip (PING)", ping, reference=True)
        if "peer" not in args.skip:
            section.add(
                "send_file the package, then call",
                _ms(_workaround(plain, root, f"peer_{host.replace('-', '_')}_")),
            )
        per_module = (statistics.median(_ms(first)) - statistics.median(_ms(disk))) / MODULES
        rtt = statistics.median(shipping_ping)
        report.target(
            f"{host}: MODULE requests per module imported (first call)",
            asked / (FIRSTS * MODULES),
            "at most 1",
            asked <= FIRSTS * MODULES,
        )
        report.target(
            f"{host}: first call's extra time per module / one PING round trip",
            per_module / rtt,
            "about 1 (informative)",
            True,
        )
        del ours
        name = f"later_{host.replace('-', '_')}"
        _write_package(root, name)
        function = _importer(name)
        _call(shipping, function)
        asked = _asked()
        later = time_calls(lambda: _call(shipping, function), LATER, warmup=5)
        extra = _asked() - asked
        none = time_calls(lambda: _call(shipping, lambda: 0), LATER, warmup=5)
        section = report.section(f"{host}: later calls", "ms", higher_is_better=False)
        section.add("ours: function using shipped modules", _ms(later), ours=True, label="shipped")
        section.add("function importing nothing", _ms(none))
        report.target(f"{host}: MODULE requests in {LATER} later calls", extra, "0", extra == 0)
        ratio = statistics.median(later) / statistics.median(none)
        report.target(
            f"{host}: later call / call importing nothing",
            ratio,
            "about 1 (nothing extra)",
            ratio < 1.25,
        )
    finally:
        shipping.cleanup()
        plain.cleanup()


def main() -> None:
    """Run every part not skipped; print the report; write the JSON if asked."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0])
    if args.quick:
        _benchlib.shrink(globals(), FIRSTS=1, LATER=2, PINGS=2)
    EVENTS.install()
    report = Report("bench_modules.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    with tempfile.TemporaryDirectory(prefix="acbench-modules-") as folder:
        root = Path(folder)
        sys.path.insert(0, str(root))  # the client's only: the packages live here
        if "localhost" not in args.skip:
            measure(report, "localhost", {}, args, root)
        if "ssh" not in args.skip:
            with ssh_bed(1) as bed:
                measure(report, bed.hosts[0].name, dict(bed.connection_kwargs), args, root)
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
