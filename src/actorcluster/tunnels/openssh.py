"""The opt-in ``openssh`` carrier: an ``ssh -N -L/-R`` process per tunnel.

OpenSSH's client relays in C, so it moves bulk data faster than any Python relay over
paramiko (see ``benchmarks/bench_tunnels.py``). It costs one extra SSH connection and
process per tunnel, so it is meant for the few tunnels that carry heavy traffic. The
command line is built from the runtime's resolved :class:`~actorcluster.ssh.SshTarget`
(``-F none``: nothing else is read), so it reaches the same host, as the same user,
with the same keys and known_hosts. Readiness is read from ``ssh -v``'s own messages.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import threading
from collections import deque
from typing import TYPE_CHECKING

from actorcluster.errors import RemoteError, UsageError
from actorcluster.tunnels.spec import FROM_RUNTIME, LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.ssh import SshTarget
    from actorcluster.tunnels.spec import TunnelSpec

__all__ = ["OpenSshForwarder", "ssh_command"]

SSH = "ssh"
"""The OpenSSH client run (looked up on PATH)."""
_READY = ("Local forwarding listening on", "remote forward success for")
_STOP_TIMEOUT = 3.0
_PR_SET_PDEATHSIG = 1


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def ssh_command(target: SshTarget, spec: TunnelSpec) -> list[str]:
    """The ``ssh -N`` command line carrying ``spec`` to ``target``.

    Raises:
        UsageError: the target needs what OpenSSH cannot be given non-interactively
            (a password, an in-memory key, a passphrase) or has a ProxyJump.
    """
    if target.password or target.pkey is not None or target.passphrase:
        raise UsageError("carrier='openssh' needs key files without passphrase (BatchMode)")
    if target.proxy_jump is not None:
        raise UsageError("carrier='openssh' does not support ProxyJump hosts")
    listen = _hostport(spec.bind_address, spec.listen_port)
    forward = f"{listen}:{LOOPBACK}:{spec.target_port}"
    strict = "accept-new" if target.accept_new_host_keys else "yes"
    known = " ".join(target.known_hosts_files) or "none"
    command = [
        SSH, "-N", "-v", "-F", "none", "-p", str(target.port), "-l", target.user,
        "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
        "-o", f"StrictHostKeyChecking={strict}", "-o", f"UserKnownHostsFile={known}",
        "-o", f"ConnectTimeout={max(1, round(target.connect_timeout))}",
        "-o", f"ServerAliveInterval={max(0, round(target.server_alive_interval))}",
        "-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
        "-o", f"IdentitiesOnly={'no' if target.look_for_keys else 'yes'}",
    ]  # fmt: skip
    if not target.allow_agent:
        command += ["-o", "IdentityAgent=none"]
    for identity in target.identity_files:
        command += ["-i", identity]
    command += ["-L" if spec.direction == FROM_RUNTIME else "-R", forward, target.hostname]
    return command


def _die_with_parent_thread() -> None:  # pragma: no cover - runs in the child
    """In the child: SIGTERM when the thread that started it ends (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class OpenSshForwarder:
    """Runs ``ssh -N`` for one tunnel and watches it.

    Args:
        name: for thread names and logs.
        target: the runtime's resolved target.
        spec: the tunnel.
        on_failed: called (from a watcher thread) if ssh exits by itself.
        timeout: seconds ssh gets to connect and set the forward up.
    """

    carrier = "openssh"
    """What carries the tunnel."""

    def __init__(
        self,
        name: str,
        target: SshTarget,
        spec: TunnelSpec,
        on_failed: Callable[[str], None],
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.command = ssh_command(target, spec)
        self._host = target.alias
        self._what = f"{spec.bind_address}:{spec.listen_port} ({spec.direction})"
        self._on_failed = on_failed
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._lines: deque[str] = deque(maxlen=20)

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<OpenSshForwarder {self.name} pid={pid} ready={self._ready.is_set()}>"

    def open(self) -> None:
        """Start ssh and wait until the forward is set up.

        Raises:
            RemoteError: ssh exited or did not set the forward up in time (the message
                carries ssh's last words).
        """
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent_thread,  # noqa: PLW1509 - only calls prctl
        )
        threading.Thread(target=self._read, name=f"{self.name}-ssh", daemon=True).start()
        if not self._ready.wait(self._timeout) or self._process.poll() is not None:
            self.close()
            words = self._last_words()
            raise RemoteError(f"{self._host}: ssh could not forward {self._what}: {words}")

    def close(self) -> None:
        """Stop ssh (its listener closes with it)."""
        self._closing.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stderr is not None
        with process.stderr:
            for raw in process.stderr:
                line = raw.decode(errors="replace").strip()
                ready = any(mark in line for mark in _READY)
                if ready or not line.startswith("debug"):
                    self._lines.append(line)
                if ready:
                    self._ready.set()
        code = process.wait()
        was_ready = self._ready.is_set()
        self._ready.set()  # wakes open() at once if ssh died before being ready
        if was_ready and not self._closing.is_set():
            self._on_failed(f"ssh exited with {code}: {self._last_words()}")

    def _last_words(self) -> str:
        return " | ".join(self._lines) or "no output from ssh"
