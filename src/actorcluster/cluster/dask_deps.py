"""Whether each host can run dask: its interpreter has ``distributed``, the version this
client has (:func:`check_dask`), all hosts asked at once, before anything starts.

A host that lacks it, or has another version (client and scheduler must agree, or the
cluster hangs at the first handshake), is a
:class:`~actorcluster.errors.MissingDependencyError` naming the host, its interpreter
and the command that installs the right version there; with ``install=True`` (the
user's opt-in: ``DaskCluster(..., install_dask=True)``) that command runs on those
hosts instead, and they are asked again.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.cluster.hosts import run_all
from actorcluster.errors import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PIP_INSTALL_COMMAND",
    "check_dask",
    "install_command",
    "local_version",
    "python_candidates",
]

log = get_logger(__name__)

PIP_INSTALL_COMMAND = 'pip install -q "dask[complete]"'
"""lazycluster's ``DaskCluster.PIP_INSTALL_COMMAND`` (any version)."""

_CHECK = """
import os, sys
print(sys.executable)
try:
    import importlib.util as u
    spec = u.find_spec("distributed")
except Exception:
    spec = None
version = "missing"
if spec is not None and spec.origin:
    version = "unknown"
    try:
        root = os.path.dirname(os.path.dirname(spec.origin))
        for name in os.listdir(root):
            if name.startswith("distributed-") and name.endswith((".dist-info", ".egg-info")):
                version = name[len("distributed-"):].rsplit(".", 1)[0].split("-")[0]
                break
    except OSError:
        pass
print(version)
"""
"""Prints the interpreter and its ``distributed`` version (``missing``; ``unknown`` if
no metadata sits beside the package). Reads a folder instead of importing
``importlib.metadata``: it runs on every host at every cluster start."""
_INSTALL_TIMEOUT = 900.0


@functools.lru_cache(maxsize=1)
def local_version() -> str | None:
    """The version of ``distributed`` here (None: not installed), read as on the hosts
    (the metadata folder beside the package), else from its metadata."""
    module = sys.modules.get("distributed")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    spec = importlib.util.find_spec("distributed")
    if spec is None or not spec.origin:
        return None
    root = os.path.dirname(os.path.dirname(spec.origin))
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            if name.startswith("distributed-") and name.endswith((".dist-info", ".egg-info")):
                return name[len("distributed-") :].rsplit(".", 1)[0].split("-")[0]
    try:
        return importlib.metadata.version("distributed")
    except importlib.metadata.PackageNotFoundError:
        return None


def install_command(interpreter: str) -> str:
    """The command that installs this client's ``distributed`` for ``interpreter``."""
    version = local_version()
    pin = f"dask[distributed]=={version}" if version else "dask[distributed]"
    return f"{interpreter} -m pip install -q {shlex.quote(pin)}"


def python_candidates(python: str | None) -> str:
    """The interpreters tried on a host, as shell words: ``python`` if given, else
    ``python3.X`` (this X) then ``python3``."""
    if python:
        return shlex.quote(python)
    return f"python{sys.version_info[0]}.{sys.version_info[1]} python3"


def _probe(runtimes: Mapping[str, Any], candidates: str) -> dict[str, tuple[str, str]]:
    """Per host: its interpreter and its ``distributed`` version (or ``missing``)."""
    command = (
        f'for p in {candidates}; do if command -v "$p" >/dev/null 2>&1; then '
        f"exec \"$p\" -c {shlex.quote(_CHECK)}; fi; done; echo 'no python3' >&2; exit 127"
    )
    captured, errors = run_all(runtimes, command)
    for error in errors.values():
        raise error
    found: dict[str, tuple[str, str]] = {}
    for host, output in captured.items():
        lines = output.text.split()
        if output.code != 0 or len(lines) < 2:
            raise MissingDependencyError(host, candidates, "python3", output.text.strip()[-300:])
        found[host] = (lines[-2], lines[-1])
    return found


def _problem(host: str, interpreter: str, version: str) -> MissingDependencyError | None:
    """Why ``host`` cannot run this client's dask, or None if it can."""
    wanted = local_version()
    command = install_command(shlex.quote(interpreter))
    opt_in = "or pass install_dask=True to install it, or python= naming one that has it"
    if version == "missing":
        hint = f"install it there with `{command}` ({opt_in})"
        return MissingDependencyError(host, interpreter, "distributed", hint)
    if wanted is not None and version not in (wanted, "unknown"):
        hint = (
            f"it has distributed {version}, this client {wanted}: client and cluster must "
            f"agree. Install the same version there with `{command}` ({opt_in})"
        )
        return MissingDependencyError(host, interpreter, f"distributed=={wanted}", hint)
    return None


def check_dask(
    runtimes: Mapping[str, Any], python: str | None, *, install: bool = False
) -> dict[str, str]:
    """Each host's interpreter that has this client's ``distributed`` (all hosts
    asked at once), quoted for a shell command.

    Args:
        runtimes: the hosts' runtimes, by host.
        python: the interpreter to use there (None: ``python3.X``, else ``python3``).
        install: install this client's version where it is missing or another.

    Raises:
        MissingDependencyError: a host's interpreter lacks it or has another version
            (names host, interpreter and the command that installs it).
    """
    candidates = python_candidates(python)
    found = _probe(runtimes, candidates)
    problems = {host: _problem(host, *found[host]) for host in found}
    wrong = {host: error for host, error in problems.items() if error is not None}
    if wrong and install:
        _install({host: runtimes[host] for host in wrong}, {h: found[h][0] for h in wrong})
        found.update(_probe({host: runtimes[host] for host in wrong}, candidates))
        wrong = {
            host: error for host in wrong if (error := _problem(host, *found[host])) is not None
        }
    for error in wrong.values():
        raise error
    return {host: shlex.quote(interpreter) for host, (interpreter, _) in found.items()}


def _install(runtimes: Mapping[str, Any], interpreters: Mapping[str, str]) -> None:
    """Run the install command on each host (one after another: pip downloads)."""
    for host, runtime in runtimes.items():
        command = install_command(shlex.quote(interpreters[host]))
        log.info("cluster.dask.installing", host=host, command=command)
        captured, errors = run_all({host: runtime}, command, _INSTALL_TIMEOUT)
        for error in errors.values():
            raise error
        output = captured[host]
        if output.code != 0:
            raise MissingDependencyError(
                host, interpreters[host], "distributed", f"`{command}` failed: {output.text[-500:]}"
            )
