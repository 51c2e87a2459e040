"""Which carrier a tunnel gets when its user names none: :func:`default_carrier`.

The default is the ``openssh`` carrier (an ``ssh -N -L/-R`` process per tunnel) where it
can reach the host exactly as the runtime's own connection does, and the ``paramiko``
relay (over that connection) otherwise. Measured with ``benchmarks/bench_tunnels.py``
against ``ssh -N`` in the same runs (``benchmarks/README.md`` has a full run), the relay
spends about twice OpenSSH's CPU per GB (1.4-2.0 s against 0.6-0.95 s), so it moves
0.45-0.65x of its rate on a busy machine, and 0.4-0.75 ms of CPU per new connection
against ssh's 0.1 ms, so 20 connections at a time take 2-3x as long to set up (15-20 ms
against 6-8 ms at the median). That is paramiko's Python per SSH message, serialized by
the GIL. The openssh carrier *is* ``ssh -N``: the same CPU per GB and per connection,
hence its rates and set-up times. It costs an SSH login per tunnel opened (~170-250 ms
here, against ~2 ms for the relay) and an ``ssh`` plus an ``sshd`` session per tunnel.

OpenSSH carries a runtime's tunnels when:

* an OpenSSH client is on ``PATH`` (``ssh -V`` names its version; asked once per path);
* the runtime logs in with what ``ssh`` can be given non-interactively: key files, an
  agent, known_hosts files. A password, an in-memory key or a key passphrase (on the
  host or on one of its jump hosts) cannot be, so those runtimes keep the relay.

Each fallback is logged once: ``tunnel.carrier.fallback`` (a warning) when there is no
OpenSSH client, once per process; and once per host when its login cannot be given to
``ssh`` (info) or ``ssh`` failed to log in where the runtime did (a warning, from
:func:`~actorcluster.tunnels.open_forwarder`).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actorcluster._logging import get_logger

if TYPE_CHECKING:
    from actorcluster.ssh import SshTarget

__all__ = [
    "OPENSSH",
    "PARAMIKO",
    "SSH",
    "OpenSshClient",
    "default_carrier",
    "openssh_client",
    "openssh_obstacle",
    "say_once",
]

log = get_logger(__name__)

OPENSSH = "openssh"
"""The carrier that runs OpenSSH's client, ``ssh -N``, per tunnel."""
PARAMIKO = "paramiko"
"""The carrier that relays over the runtime's own (paramiko) connection."""
SSH = "ssh"
"""The OpenSSH client's name, looked up on ``PATH``."""
_VERSION_TIMEOUT = 10.0
_said: set[object] = set()
_said_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class OpenSshClient:
    """An OpenSSH client found on this machine."""

    path: str
    """Its absolute path."""
    version: tuple[int, int]
    """Its version, ``(major, minor)``."""


def openssh_client() -> OpenSshClient | None:
    """The OpenSSH client on ``PATH`` now, or None if there is none (or not OpenSSH's)."""
    path = shutil.which(SSH)
    return None if path is None else _probe(path)


@functools.lru_cache(maxsize=16)
def _probe(path: str) -> OpenSshClient | None:
    try:
        done = subprocess.run(
            [path, "-V"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stderr + done.stdout)
    if found is None:
        return None
    return OpenSshClient(path, (int(found.group(1)), int(found.group(2))))


def openssh_obstacle(target: SshTarget) -> str | None:
    """Why ``ssh`` cannot log in to ``target`` as the runtime does, or None if it can."""
    hop: SshTarget | None = target
    while hop is not None:
        if hop.password is not None:
            return f"{hop.alias} is given a password"
        if hop.pkey is not None:
            return f"{hop.alias} is given an in-memory key (pkey)"
        if hop.passphrase is not None:
            return f"{hop.alias} is given a key passphrase"
        hop = hop.proxy_jump
    return None


def default_carrier(target: SshTarget) -> str:
    """The carrier of tunnels to ``target`` whose user named none.

    :data:`OPENSSH` if an OpenSSH client is on ``PATH`` and can log in as the runtime
    does (:func:`openssh_obstacle`), else :data:`PARAMIKO`; each fallback is logged
    once (``tunnel.carrier.fallback``).
    """
    if openssh_client() is None:
        say_once(
            "no-openssh-client",
            "warning",
            reason=f"no OpenSSH client ({SSH!r}) on PATH",
        )
        return PARAMIKO
    obstacle = openssh_obstacle(target)
    if obstacle is not None:
        say_once(("obstacle", target.alias), "info", host=target.alias, reason=obstacle)
        return PARAMIKO
    return OPENSSH


def say_once(key: object, level: str, **fields: object) -> None:
    """Log ``tunnel.carrier.fallback`` with ``fields`` the first time ``key`` is seen."""
    with _said_lock:
        if key in _said:
            return
        _said.add(key)
    emit = log.warning if level == "warning" else log.info
    emit("tunnel.carrier.fallback", **{"carrier": PARAMIKO, **fields})


def _forget() -> None:
    """Forget what was logged and which clients were found (for tests)."""
    with _said_lock:
        _said.clear()
    _probe.cache_clear()
