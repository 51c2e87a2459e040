"""The ``openssh`` carrier: an ``ssh -N -L/-R`` process per tunnel.

OpenSSH's client relays in C, so it moves data and sets connections up as fast as
``ssh -N`` itself: it *is* ``ssh -N`` (see :mod:`actorcluster.tunnels.carrier` for the
numbers). The command line is built from the runtime's resolved
:class:`~actorcluster.ssh.SshTarget` alone (``-F none``: no ssh_config is read, not even
the system's), so it reaches the same host, as the same user, with the same keys,
agent and known_hosts files, through the same jump hosts (as ``ProxyCommand``\\ s).

**One process per tunnel**, not one ``ssh -M`` master per runtime with ``-O forward``:
measured here, a master adds a forward in 4-9 ms where a new ``ssh -N`` takes about
170 ms to log in, but ``ssh -O cancel`` only closes a forward's listener, and the
connections already through it stay open in the master (OpenSSH 9.2). Stopping a
tunnel must close them too, so each tunnel has a process of its own, whose end ends
all of them. The cost: one SSH login (~170 ms) and one ``ssh`` plus one ``sshd``
session per tunnel.

**No process left behind**: ssh is started by a thread of the forwarder that lives
exactly as long as ssh does (it reads ssh's messages, then reaps it), with
``PR_SET_PDEATHSIG`` set in the child, so Linux sends ssh SIGTERM when that thread ends,
also when this whole process dies. A stopped forwarder terminates ssh; ssh that exits
by itself (its connection lost, the host restarted) is reported through ``on_failed``,
and the tunnel's supervisor opens a new one.

**Readiness.** ssh runs at ``LogLevel=VERBOSE``, which prints nothing per connection
and says when it logged in. A local forward (``-L``) is up once its listening socket
shows in ``/proc/net/tcp*`` (ssh's own "Local forwarding listening on" comes just
*before* it binds). A remote one (``-R``) is up when the host's answer is reported
("remote forward success for", a debug message raised to the log by ``LogVerbose`` for
that one function; ``-v`` on clients older than 8.5, which lack ``LogVerbose``, and
then print three lines per connection).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from actorcluster._limits import Deadline
from actorcluster._workers import THREADS
from actorcluster.errors import RemoteError
from actorcluster.tunnels.carrier import OPENSSH
from actorcluster.tunnels.spec import FROM_RUNTIME, LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.ssh import SshTarget
    from actorcluster.tunnels.carrier import OpenSshClient
    from actorcluster.tunnels.spec import TunnelSpec

__all__ = ["OpenSshForwarder", "listening_here", "login_options", "ssh_command"]

_REMOTE_READY = "remote forward success for"
_PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_TCP_LISTEN = "0A"
_LISTEN_POLL = 0.001
_LOGIN_POLL = 0.05
_LOGGED_IN = ("Authenticated to", "Authentication succeeded")
_UNREACHED = (
    "connect to host",
    "Could not resolve hostname",
    "Connection closed by",
    "Connection reset by",
    "Connection timed out",
    "kex_exchange_identification",
    "banner exchange",
)
_REMOTE_READY_FUNCTION = "ssh.c:ssh_confirm_remote_forward():*"
_LOG_VERBOSE_SINCE = (8, 5)
_CIPHERS = (
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
    "aes128-ctr,aes192-ctr,aes256-ctr"
)
_DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519")  # what paramiko's look_for_keys tries
_STOP_TIMEOUT = 3.0
_PR_SET_PDEATHSIG = 1


def listening_here(port: int) -> bool | None:
    """Whether a TCP socket here listens on ``port`` (any address), from
    ``/proc/net/tcp*``; None where those cannot be read."""
    try:
        tables = [path.read_text().splitlines()[1:] for path in _PROC_TCP if path.exists()]
    except OSError:
        return None
    if not tables:
        return None
    hex_port = f"{port:04X}"
    for table in tables:
        for row in table:
            fields = row.split()
            if fields[3] == _TCP_LISTEN and fields[1].endswith(f":{hex_port}"):
                return True
    return False


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _path(path: str) -> str:
    """``path`` as ssh reads it: ``%`` escaped (ssh expands ``%`` tokens in paths)."""
    return path.replace("%", "%%")


def _option_path(path: str) -> str:
    """``path`` in an ``-o`` value: escaped, and quoted if it has a space."""
    return f'"{_path(path)}"' if " " in path else _path(path)


def login_options(client: OpenSshClient, target: SshTarget) -> list[str]:
    """The ``ssh`` arguments that log in to ``target`` exactly as our connection does.

    Everything but the destination: ``-F none`` and options from ``target`` alone (user,
    port, keys, agent, known_hosts, timeouts, ciphers, jump hosts as ``ProxyCommand``).
    """
    strict = "accept-new" if target.accept_new_host_keys else "yes"
    known = " ".join(map(_option_path, target.known_hosts_files)) or "none"
    options = [
        "-F", "none", "-p", str(target.port), "-l", target.user,
        "-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={strict}",
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=none",
        "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
        "-o", f"ConnectTimeout={max(1, round(target.connect_timeout))}",
        "-o", f"ServerAliveInterval={max(0, round(target.server_alive_interval))}",
        "-o", f"Ciphers={_CIPHERS}",
        "-o", f"IdentitiesOnly={'no' if target.allow_agent else 'yes'}",
    ]  # fmt: skip
    if not target.allow_agent:
        options += ["-o", "IdentityAgent=none"]
    identities = list(target.identity_files)  # paramiko's order: given, then ~/.ssh/id_*
    if target.look_for_keys:
        home = os.path.expanduser("~/.ssh")
        identities += [os.path.join(home, name) for name in _DEFAULT_KEYS]
    for identity in dict.fromkeys(identities):
        if os.path.isfile(identity):  # missing ones are skipped, as paramiko does
            options += ["-i", _path(identity)]
    if target.proxy_jump is not None:
        options += ["-o", f"ProxyCommand={_proxy_command(client, target.proxy_jump, target)}"]
    return options


def _proxy_command(client: OpenSshClient, jump: SshTarget, target: SshTarget) -> str:
    """``ssh -W target jump`` as a ProxyCommand (run by ``/bin/sh``; ``%`` escaped)."""
    argv = [client.path, *login_options(client, jump), "-o", "LogLevel=ERROR"]
    argv += ["-W", _hostport(target.hostname, target.port), jump.hostname]
    return shlex.join(argv).replace("%", "%%")


def ssh_command(client: OpenSshClient, target: SshTarget, spec: TunnelSpec) -> list[str]:
    """The ``ssh -N`` command line carrying ``spec`` to ``target``."""
    listen = _hostport(spec.bind_address, spec.listen_port)
    forward = f"{listen}:{LOOPBACK}:{spec.target_port}"
    verbosity = ["-o", "LogLevel=VERBOSE"]
    if spec.direction != FROM_RUNTIME:
        if client.version >= _LOG_VERBOSE_SINCE:
            verbosity += ["-o", f"LogVerbose={_REMOTE_READY_FUNCTION}"]
        else:
            verbosity = ["-v"]
    return [
        client.path, "-N", *verbosity, *login_options(client, target),
        "-o", "ExitOnForwardFailure=yes",
        "-L" if spec.direction == FROM_RUNTIME else "-R", forward, target.hostname,
    ]  # fmt: skip


@functools.cache
def _prctl() -> Callable[[int, int], int] | None:
    """libc's ``prctl``, looked up in this process (not between fork and exec)."""
    with contextlib.suppress(Exception):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


def _child_setup(prctl: Callable[[int, int], int] | None, parent: int) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child, between fork and exec
        """SIGTERM when the thread that started us ends; exit if the parent is gone."""
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before prctl took effect
            os._exit(1)

    return setup


class OpenSshForwarder:
    """Runs ``ssh -N`` for one tunnel and watches it.

    Args:
        name: for thread names and logs.
        client: the OpenSSH client to run.
        target: the runtime's resolved target.
        spec: the tunnel.
        on_failed: called (from the watcher thread) if ssh exits by itself once ready.
        timeout: seconds ssh gets to log in and set the forward up.
    """

    carrier = OPENSSH
    """What carries the tunnel."""

    def __init__(
        self,
        name: str,
        client: OpenSshClient,
        target: SshTarget,
        spec: TunnelSpec,
        on_failed: Callable[[str], None],
        *,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.command = ssh_command(client, target, spec)
        self._listen_port = spec.listen_port if spec.direction == FROM_RUNTIME else None
        self._host = target.alias
        self._what = f"{spec.bind_address}:{spec.listen_port} ({spec.direction})"
        self._on_failed = on_failed
        self._timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False  # declared by open(); after that, an exit is a failure
        self._forwarded = threading.Event()  # the host answered the -R (or ssh ended)
        self._logged_in = threading.Event()
        self._ended = threading.Event()
        self._closing = False
        self._lines: deque[str] = deque(maxlen=20)

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<OpenSshForwarder {self.name} pid={pid} ready={self._ready}>"

    @property
    def pid(self) -> int | None:
        """ssh's process id, once started."""
        return None if self._process is None else self._process.pid

    @property
    def login_refused(self) -> bool:
        """Whether ssh ended without logging in although it was not for want of
        reaching the host: its options, the host key or the credentials were refused."""
        if not self._ended.is_set() or self._logged_in.is_set():
            return False
        words = self._last_words()
        return not any(mark in words for mark in _UNREACHED)

    def open(self) -> None:
        """Start ssh and wait until the forward is set up.

        Raises:
            RemoteError: ssh exited or did not set the forward up in time (the message
                carries ssh's last words).
        """
        deadline = Deadline(self._timeout)
        THREADS.start(self._watch, name=f"{self.name}-ssh")
        if self._listen_port is not None:
            up = self._listening(deadline)
        else:
            up = self._forwarded.wait(self._timeout)
        with self._lock:
            self._ready = ready = up and not self._ended.is_set()
        if not ready:
            self.close()
            waited = "" if up else f" (not ready after {self._timeout:g} s)"
            raise RemoteError(
                f"{self._host}: ssh could not forward {self._what}{waited}: {self._last_words()}"
            )

    def _listening(self, deadline: Deadline) -> bool:
        """Whether ssh's listener here (``-L``) came up before ``deadline``."""
        assert self._listen_port is not None
        while not self._ended.is_set():
            up = listening_here(self._listen_port)
            if up is None and self._logged_in.is_set():  # no /proc: listen() follows at once
                time.sleep(10 * _LISTEN_POLL)
                return True
            if up:
                return True
            if deadline.expired():
                return False
            if self._logged_in.is_set():
                time.sleep(_LISTEN_POLL)
            else:
                self._logged_in.wait(_LOGIN_POLL)
        return True  # ended: open() reports ssh's last words

    def close(self) -> None:
        """Stop ssh (its listener and connections close with it). Idempotent."""
        with self._lock:
            self._closing = True
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _watch(self) -> None:
        """Start ssh, read its messages until it exits, reap it (its whole life here)."""
        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "SHELL": "/bin/sh"},  # runs ProxyCommand
                preexec_fn=_child_setup(_prctl(), os.getpid()),  # noqa: PLW1509 - prctl only
            )
        except OSError as exc:
            self._lines.append(f"cannot run {self.command[0]}: {exc}")
            self._ended.set()
            self._forwarded.set()
            return
        with self._lock:
            self._process = process
            closing = self._closing
        if closing:  # closed while starting
            process.terminate()
        self._read(process)
        code = process.wait()
        with self._lock:
            self._ended.set()
            was_ready, closing = self._ready, self._closing
        self._forwarded.set()  # wakes open() at once if ssh died before being ready
        if was_ready and not closing:
            self._on_failed(f"ssh exited with {code}: {self._last_words()}")

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        with process.stderr:
            for raw in process.stderr:
                line = raw.decode(errors="replace").strip()
                ready = _REMOTE_READY in line
                if ready or not line.startswith("debug"):
                    self._lines.append(line)
                if any(mark in line for mark in _LOGGED_IN):
                    self._logged_in.set()
                if ready:
                    self._forwarded.set()

    def _last_words(self) -> str:
        return " | ".join(self._lines) or "no output from ssh"
