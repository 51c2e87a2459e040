"""Every script in examples/ runs (so the documentation's examples cannot rot): on the
localhost runtime, and those that take hosts on the sshd bed too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import cli_env

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED = {
    "tasks.py": "cancelled: True",
    "functions.py": "raised on the host: builtins.ZeroDivisionError",
    "files.py": "fetched back identical: True",
    "tunnels.py": "the host reached us: 200",
    "groups.py": "returns: [42",
    "asyncio_tasks.py": "the task was cancelled: True",
    "service.py": "stopped:",
    "clusters.py": "sum of squares below 100: 328350",
}
"""A line each example prints once it got to its end."""
ON_THE_BED = {
    "tasks.py": ["host-1"],
    "groups.py": ["host-1", "host-2"],
    "files.py": ["host-2"],
    "clusters.py": ["host-1", "host-2"],
}
"""Examples also run against sshd hosts, with these arguments."""


def _needs_dask(name: str) -> bool:
    return name == "clusters.py" and (
        importlib.util.find_spec("distributed") is None
        or importlib.util.find_spec("actorcluster.cluster.dask_cluster") is None
    )


def _run(name: str, args: list[str], ssh_config: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        env=cli_env(ssh_config),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, f"{name} failed:\n{output}\n{result.stderr.decode()}"
    assert EXPECTED[name] in output, output
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    return output


def test_every_example_is_checked():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_example_runs_on_localhost(name):
    if _needs_dask(name):
        pytest.skip("needs actorcluster.cluster.dask_cluster and distributed")
    _run(name, [])


@pytest.mark.parametrize("name", sorted(ON_THE_BED))
def test_the_example_runs_on_sshd_hosts(name, ssh_bed):
    if _needs_dask(name):
        pytest.skip("needs distributed")
    output = _run(name, ON_THE_BED[name], ssh_bed.ssh_config)
    if name == "groups.py":
        assert "host-1: [" in output and "host-2: [" in output  # one copy per host
