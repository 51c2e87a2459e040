"""Running the ``actorcluster`` command line as a user would: a subprocess.

The subprocess imports this worktree's package (``PYTHONPATH``), reads the test bed's
ssh_config through ``$ACTORCLUSTER_SSH_CONFIG`` and has a bounded time to finish.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from agent_harness import SRC

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CLI", "KEEPER_ENV", "cli", "cli_env", "end_started", "start_cli"]

CLI = [sys.executable, "-m", "actorcluster.cli"]
"""How the tests start the command line."""
KEEPER_ENV: dict[str, str] = {"ACTORCLUSTER_KEEPER": "0"}
"""How calls meet the connection keeper: none by default (a test that wants one sets a
private keeper folder here, see ``keepers.py``, so tests never share a keeper)."""


def cli_env(ssh_config: Path | str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a command line run: ours, this worktree's package first."""
    env = {**os.environ, **KEEPER_ENV, **extra}
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("ACTORCLUSTER_SSH_CONFIG", None)
    if ssh_config is not None:
        env["ACTORCLUSTER_SSH_CONFIG"] = str(ssh_config)
    env.setdefault("COLUMNS", "200")
    return env


def cli(
    *args: str,
    ssh_config: Path | str | None = None,
    input: bytes | None = None,
    timeout: float = 90.0,
    **popen: Any,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``actorcluster ARGS...`` to its end; stdout and stderr captured apart."""
    popen.setdefault("stdin", subprocess.DEVNULL if input is None else None)
    return subprocess.run(
        [*CLI, *args],
        input=input,
        capture_output=True,
        env=cli_env(ssh_config),
        timeout=timeout,
        check=False,
        **popen,
    )


def start_cli(
    *args: str, ssh_config: Path | str | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start ``actorcluster ARGS...`` (stdout and stderr piped unless given)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("stdin", subprocess.DEVNULL)
    process: subprocess.Popen[bytes] = subprocess.Popen(
        [*CLI, *args], env=cli_env(ssh_config), **popen
    )
    _started.append(process)
    return process


_started: list[subprocess.Popen[bytes]] = []
"""The processes ``start_cli`` started that ``end_started`` has not ended yet."""


def end_started() -> None:
    """End what ``start_cli`` started (a test that failed before waiting for its process
    leaves it running, its pipes open): killed if still running, waited for, pipes
    closed. Run after every test (conftest), so nothing is left for the garbage
    collector to warn about in a later test."""
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
        with process:  # closes the pipes, waits
            pass
