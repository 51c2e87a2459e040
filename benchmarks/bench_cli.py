"""The command line as a user meets it: whole processes, timed from start to exit.

    python benchmarks/bench_cli.py [--quick] [--runs N] [--json PATH]

Each row is the median of N runs after a warm-up run, all in the same run on one bed:

- startup: ``actorcluster --version`` and ``--help`` against ``python -c pass``
  (target: ``--version`` at most 3x);
- ``actorcluster run HOST -- true``: cold (``--no-keeper``: import, connect, run,
  clean up) against ``ssh HOST true`` (target: at most 1.5x), and through a warm keeper
  against ``ssh`` with ``ControlMaster auto`` + ``ControlPersist`` after its first call
  (target: at most 0.5x).

The command line is this checkout's (``PYTHONPATH=src``), started the way the installed
``actorcluster`` script starts it. ``--quick`` (5 runs) is what CI runs.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import _benchlib
from _benchlib import REPO, Report, environment_notes, ssh_bed, time_calls
from actorcluster.cli.keeper_client import ask

if TYPE_CHECKING:
    from sshbed import SshBed

ENTRY = "import sys; from actorcluster.cli import main; sys.exit(main())"
"""What the installed ``actorcluster`` script runs."""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _call(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv} failed ({result.returncode}): {result.stderr!r}")


def _ms(seconds: list[float]) -> list[float]:
    return [value * 1000 for value in seconds]


def measure_startup(report: Report, runs: int) -> dict[str, float]:
    """``--version`` and ``--help`` against an empty Python start."""
    section = report.section("startup (whole process)", "ms", higher_is_better=False)
    env = _env(ACTORCLUSTER_KEEPER="0")
    python = sys.executable
    medians = {}
    for name, argv, ours in (
        ("python -c pass", [python, "-c", "pass"], False),
        ("actorcluster --version", [python, "-c", ENTRY, "--version"], True),
        ("actorcluster --help", [python, "-c", ENTRY, "--help"], True),
    ):
        samples = time_calls(functools.partial(_call, argv, env), runs)
        row = section.add(name, _ms(samples), ours=ours)
        medians[name] = row.stats["median"]
    ratio = medians["actorcluster --version"] / medians["python -c pass"]
    report.target("actorcluster --version / python -c pass", ratio, "at most 3x", ratio <= 3)
    return medians


def _ssh(bed: SshBed, *args: str) -> list[str]:
    return ["ssh", "-F", str(bed.ssh_config), *args]


def measure_run(report: Report, bed: SshBed, runs: int) -> None:
    """``run HOST -- true``: cold and through a warm keeper, against ssh."""
    section = report.section("run HOST -- true (whole process)", "ms", higher_is_better=False)
    config = str(bed.ssh_config)
    python = sys.executable
    ours = [python, "-c", ENTRY, "run", "host-1", "--", "true"]
    plain = section.add(
        "ssh host-1 true",
        _ms(time_calls(lambda: _call(_ssh(bed, "host-1", "true"), {**os.environ}), runs)),
    )
    with tempfile.TemporaryDirectory(prefix="acb-cp-", dir="/tmp") as folder:
        options = [
            "-o", "ControlMaster=auto", "-o", "ControlPersist=60",
            "-o", f"ControlPath={folder}/%C",
        ]  # fmt: skip
        persist_argv = _ssh(bed, *options, "host-1", "true")
        persist = section.add(
            "ssh host-1 true (ControlPersist, warm)",
            _ms(time_calls(lambda: _call(persist_argv, {**os.environ}), runs)),
        )
        subprocess.run(
            _ssh(bed, *options, "-O", "exit", "host-1"), capture_output=True, check=False
        )
    cold_env = _env(ACTORCLUSTER_SSH_CONFIG=config, ACTORCLUSTER_KEEPER="0")
    cold = section.add(
        "actorcluster run --no-keeper (cold)",
        _ms(time_calls(lambda: _call(ours, cold_env), runs)),
        ours=True,
        label="cold",
    )
    keepers = tempfile.mkdtemp(prefix="acb-k-", dir="/tmp")
    warm_env = _env(ACTORCLUSTER_SSH_CONFIG=config, ACTORCLUSTER_KEEPER_DIR=keepers)
    try:
        warm = section.add(
            "actorcluster run (warm keeper)",
            _ms(time_calls(lambda: _call(ours, warm_env), runs)),
            ours=True,
            label="warm keeper",
        )
    finally:
        for path in glob.glob(os.path.join(keepers, "k-*.sock")):
            ask(path, {"op": "stop"})
        shutil.rmtree(keepers, ignore_errors=True)
    cold_ratio = cold.stats["median"] / plain.stats["median"]
    warm_ratio = warm.stats["median"] / persist.stats["median"]
    report.target("cold run / ssh host true", cold_ratio, "at most 1.5x", cold_ratio <= 1.5)
    report.target(
        "warm keeper run / ControlPersist ssh", warm_ratio, "at most 0.5x", warm_ratio <= 0.5
    )


def main() -> None:
    """Measure, print the report, write the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per row (CI)")
    parser.add_argument("--runs", type=int, default=15, help="runs per row (default 15)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    _benchlib.quiet_logging()
    report = Report("bench_cli.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    measure_startup(report, runs)
    with ssh_bed(1) as bed:
        measure_run(report, bed, runs)
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
