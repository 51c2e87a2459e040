"""The command line as a user meets it: whole processes, timed from start to exit.

    python benchmarks/bench_cli.py [--quick] [--runs N] [--json PATH]

Each row is the median of N runs after a warm-up round, all in the same run on one bed;
the commands compared run in turns (one of each per round), so that a machine whose load
comes and goes weighs on each alike:

- startup: ``actorcluster --version`` and ``--help`` against ``python -c pass``
  (target: ``--version`` at most 3x);
- ``actorcluster run HOST -- true``: cold (``--no-keeper``: import, connect, run,
  clean up) against ``ssh HOST true`` (target: at most 1.5x), and through a warm keeper
  against ``ssh`` with ``ControlMaster auto`` + ``ControlPersist`` after its first call
  (target: at most 0.5x);
- a short library script (``Runtime("host-1", keeper=...)``, one command, cleanup):
  through a warm keeper (``keeper=True``) against a direct connection (``keeper=False``)
  and ``ssh HOST true`` (target: the keeper's below the direct one's). The keeper saves
  the SSH connect only: the agent still starts, through the host's login shell, for
  each script (about as long as ``ssh HOST true`` over a ControlPersist master).

The command line is this checkout's (``PYTHONPATH=src``), started the way the installed
``actorcluster`` script starts it, with its modules' bytecode cached as an installed
package has it (a private ``PYTHONPYCACHEPREFIX``, written by the warm-up round, even
where the environment sets ``PYTHONDONTWRITEBYTECODE``: compiling every module at each
start is no user's cost). ``--quick`` (5 runs) is what CI runs.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _benchlib
from _benchlib import REPO, Report, environment_notes, ssh_bed
from actorcluster.cli.keeper_client import ask

if TYPE_CHECKING:
    from sshbed import SshBed

ENTRY = "import sys; from actorcluster.cli import main; sys.exit(main())"
"""What the installed ``actorcluster`` script runs."""


_PYCACHE = tempfile.mkdtemp(prefix="acb-pyc-", dir="/tmp")
"""The bytecode cache of the command lines measured (removed at exit)."""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return env


def _call(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv} failed ({result.returncode}): {result.stderr!r}")


def _interleaved(
    commands: dict[str, list[str]], env: dict[str, dict[str, str]], runs: int
) -> dict[str, list[float]]:
    """Milliseconds of each command's runs, taken in rounds (each command once per
    round, the order turning): a load that comes and goes weighs on all of them alike.
    One round first, untimed (warm-up: caches, a ControlPersist master, a keeper)."""
    names = list(commands)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(runs + 1):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            _call(commands[name], env[name])
            if round_number:
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def measure_startup(report: Report, runs: int) -> None:
    """``--version`` and ``--help`` against an empty Python start."""
    section = report.section("startup (whole process)", "ms", higher_is_better=False)
    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "actorcluster --version": [python, "-c", ENTRY, "--version"],
        "actorcluster --help": [python, "-c", ENTRY, "--help"],
    }
    env = dict.fromkeys(commands, _env(ACTORCLUSTER_KEEPER="0"))
    samples = _interleaved(commands, env, runs)
    rows = {
        name: section.add(name, values, ours=name != "python -c pass")
        for name, values in samples.items()
    }
    ratio = rows["actorcluster --version"].stats["median"] / rows["python -c pass"].stats["median"]
    report.target("actorcluster --version / python -c pass", ratio, "at most 3x", ratio <= 3)


def _ssh(bed: SshBed, *args: str) -> list[str]:
    return ["ssh", "-F", str(bed.ssh_config), *args]


def measure_run(report: Report, bed: SshBed, runs: int) -> None:
    """``run HOST -- true``: cold and through a warm keeper, against ssh."""
    section = report.section("run HOST -- true (whole process)", "ms", higher_is_better=False)
    config = str(bed.ssh_config)
    ours = [sys.executable, "-c", ENTRY, "run", "host-1", "--", "true"]
    control = tempfile.mkdtemp(prefix="acb-cp-", dir="/tmp")
    keepers = tempfile.mkdtemp(prefix="acb-k-", dir="/tmp")
    persist = [
        "-o",
        "ControlMaster=auto",
        "-o",
        "ControlPersist=60",
        "-o",
        f"ControlPath={control}/%C",
    ]
    commands = {
        "ssh host-1 true": _ssh(bed, "host-1", "true"),
        "ssh host-1 true (ControlPersist, warm)": _ssh(bed, *persist, "host-1", "true"),
        "actorcluster run --no-keeper (cold)": ours,
        "actorcluster run (warm keeper)": ours,
    }
    env = {
        "ssh host-1 true": dict(os.environ),
        "ssh host-1 true (ControlPersist, warm)": dict(os.environ),
        "actorcluster run --no-keeper (cold)": _env(
            ACTORCLUSTER_SSH_CONFIG=config, ACTORCLUSTER_KEEPER="0"
        ),
        "actorcluster run (warm keeper)": _env(
            ACTORCLUSTER_SSH_CONFIG=config, ACTORCLUSTER_KEEPER_DIR=keepers
        ),
    }
    try:
        samples = _interleaved(commands, env, runs)
    finally:
        subprocess.run(
            _ssh(bed, *persist, "-O", "exit", "host-1"), capture_output=True, check=False
        )
        for path in glob.glob(os.path.join(keepers, "k-*.sock")):
            ask(path, {"op": "stop"})
        shutil.rmtree(keepers, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)
    labels = {
        "actorcluster run --no-keeper (cold)": "cold",
        "actorcluster run (warm keeper)": "warm keeper",
    }
    rows = {
        name: section.add(name, values, ours=name in labels, label=labels.get(name, ""))
        for name, values in samples.items()
    }
    median = {name: row.stats["median"] for name, row in rows.items()}
    cold_ratio = median["actorcluster run --no-keeper (cold)"] / median["ssh host-1 true"]
    warm_ratio = (
        median["actorcluster run (warm keeper)"] / median["ssh host-1 true (ControlPersist, warm)"]
    )
    report.target("cold run / ssh host true", cold_ratio, "at most 1.5x", cold_ratio <= 1.5)
    report.target(
        "warm keeper run / ControlPersist ssh", warm_ratio, "at most 0.5x", warm_ratio <= 0.5
    )


SCRIPT = (
    "from actorcluster import Runtime, RuntimeTask\n"
    "rt = Runtime('host-1', keeper={keeper})\n"
    "rt.execute_task(RuntimeTask('t').run_command('true'), execute_async=False)\n"
    "rt.cleanup()\n"
)
"""The short script timed: connect, one command, clean up (public API only)."""


def measure_script(report: Report, bed: SshBed, runs: int) -> None:
    """A short library script, through a warm keeper and direct, against ssh."""
    section = report.section(
        "a short script: Runtime(...), one command, cleanup", "ms", higher_is_better=False
    )
    config = str(bed.ssh_config)
    keepers = tempfile.mkdtemp(prefix="acb-k-", dir="/tmp")
    python = sys.executable
    commands = {
        "ssh host-1 true": _ssh(bed, "host-1", "true"),
        "script, keeper=False": [python, "-c", SCRIPT.format(keeper=False)],
        "script, keeper=True (warm keeper)": [python, "-c", SCRIPT.format(keeper=True)],
    }
    script_env = _env(ACTORCLUSTER_SSH_CONFIG=config, ACTORCLUSTER_KEEPER_DIR=keepers)
    env = {"ssh host-1 true": dict(os.environ)} | dict.fromkeys(list(commands)[1:], script_env)
    try:
        samples = _interleaved(commands, env, runs)
    finally:
        for path in glob.glob(os.path.join(keepers, "k-*.sock")):
            ask(path, {"op": "stop"})
        shutil.rmtree(keepers, ignore_errors=True)
    labels = {"script, keeper=False": "direct", "script, keeper=True (warm keeper)": "keeper"}
    rows = {
        name: section.add(name, values, ours=name in labels, label=labels.get(name, ""))
        for name, values in samples.items()
    }
    median = {name: row.stats["median"] for name, row in rows.items()}
    kept = median["script, keeper=True (warm keeper)"]
    direct_ratio = kept / median["script, keeper=False"]
    report.target("keeper script / direct script", direct_ratio, "below 1x", direct_ratio < 1)
    ssh_ratio = kept / median["ssh host-1 true"]
    report.target("keeper script / ssh host true", ssh_ratio, "(reported)", True)


def main() -> None:
    """Measure, print the report, write the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per row (CI)")
    parser.add_argument("--runs", type=int, default=15, help="runs per row (default 15)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    runs = 5 if quick else args.runs
    _benchlib.quiet_logging()
    report = Report("bench_cli.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    try:
        measure_startup(report, runs)
        with ssh_bed(1) as bed:
            measure_run(report, bed, runs)
            measure_script(report, bed, runs)
    finally:
        shutil.rmtree(_PYCACHE, ignore_errors=True)
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
