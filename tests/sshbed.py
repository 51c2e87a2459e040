"""A bed of real OpenSSH servers on loopback addresses, for tests and benchmarks.

``SshBed(root_dir, count=3)`` starts ``count`` real ``sshd`` processes, host ``host-N``
on ``127.0.0.(N+1)`` and a free port, each with its own ed25519 host key, and writes
an ``ssh_config`` and a ``known_hosts`` that the OpenSSH client and paramiko both read.
Everyone logs in as the current user with one per-bed client key::

    with SshBed(tmp_path) as bed:
        subprocess.run(["ssh", "-F", str(bed.ssh_config), "host-1", "true"], check=True)
        bed.hosts[0].stop()  # the host goes down: listener and sessions killed

``SshBed(root, isolated=True)`` makes the hosts separate machines, as far as the network
goes: each runs in a network namespace of its own, with its own loopback and address
(``10.B.N.2``), reached through a link that :meth:`SshHost.partition` pulls and
:meth:`SshHost.heal` plugs back (``sshbed_net.py``); :meth:`SshHost.run` starts a
command there. ``SshBed(root, rtt_ms=20)`` puts a relay before each sshd that adds that
round-trip time and counts round trips (``latency_relay.py``, ``host.relay``).

Plain Python (no pytest inside), so benchmarks import it too; ``python3 tests/sshbed.py
DIR [COUNT] [--isolated] [--rtt MS]`` starts a bed by hand and keeps it up until
Ctrl-C. A watchdog process tears the sshd processes down if the process that started
them dies without calling ``stop()`` (see ``sshbed_teardown.py``; ``proctree.py`` finds
and kills process trees).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latency_relay import LatencyRelay
from proctree import ProcessTreeError, cmdline, descendants
from sshbed_home import LOCK_NAME, own_shims_argv
from sshbed_net import IsolationUnavailableError, NetBlock, isolation_obstacle, link
from sshbed_teardown import kill_sessions_of, remove_stale_pyenv_lock

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["IsolationUnavailableError", "SshBed", "SshBedError", "SshHost"]

SSHD_PATH = "/usr/sbin/sshd"
SFTP_SERVER_PATHS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_BIND_ATTEMPTS = 5
_UNSAFE_PATH_CHARS = frozenset(" \t\n\"'%#\\")
ISOLATED = os.environ.get("ACTORCLUSTER_TEST_ISOLATED", "") not in ("", "0")
"""``ACTORCLUSTER_TEST_ISOLATED=1``: every bed not told otherwise is isolated (the whole
suite on separate machines, see the README)."""


class SshBedError(RuntimeError):
    """The bed could not start, stop or change an sshd (the message says why)."""


def write_ed25519_key(path: Path, comment: str) -> str:
    """Write a new ed25519 private key (OpenSSH format, mode 600) and ``path.pub``.

    Returns the public key as ``ssh-ed25519 AAAA...`` (without comment).
    """
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # atomic: a connecting sshd never reads half a key
    path.with_name(path.name + ".pub").write_text(f"{public.decode()} {comment}\n")
    return public.decode()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _sshd_version() -> tuple[int, int]:
    out = subprocess.run([SSHD_PATH, "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _check_prerequisites(user: str) -> str:
    """Fail early, with the fix, on what keeps sshd from running; return sftp-server's path."""
    if not os.access(SSHD_PATH, os.X_OK):
        raise SshBedError(f"{SSHD_PATH} not found: install openssh-server (scripts/test.sh does)")
    sftp = next((p for p in SFTP_SERVER_PATHS if os.access(p, os.X_OK)), None)
    if sftp is None:
        raise SshBedError(f"sftp-server not found in {SFTP_SERVER_PATHS}: install openssh-server")
    if os.getuid() == 0:  # privilege separation dir; systemd makes it only for its own sshd
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with contextlib.suppress(OSError):  # unreadable unless root; sshd cannot check it then
        for line in Path("/etc/shadow").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == user and rest.startswith("!"):
                raise SshBedError(
                    f"account {user!r} is locked ('!' in /etc/shadow): sshd without PAM "
                    f"refuses even key logins to it. Fix: usermod -p '*' {user} ('*' = no "
                    "password; key logins work, password logins stay impossible)"
                )
    return sftp


class SshHost:
    """One sshd of the bed: ``host-N`` on ``127.0.0.(N+1)``, a fixed port once started
    (isolated: ``10.B.N.2``, port 22, in a network namespace of its own)."""

    def __init__(self, bed: SshBed, index: int) -> None:
        """Create the host's directory and host key; :meth:`start` runs it."""
        self.name = f"host-{index}"
        self.net = bed.net_block.host(index) if bed.net_block is not None else None
        """The host's namespace and link (isolated beds only)."""
        self.sshd_address = self.net.address if self.net else f"127.0.0.{index + 1}"
        """Where sshd listens: the host's own address."""
        self.sshd_port = 22 if self.net else 0
        self.relay: LatencyRelay | None = None
        """The relay clients reach the host through (``rtt_ms`` beds only)."""
        self._runs: list[subprocess.Popen[bytes]] = []
        self.directory = bed.root / self.name
        self.host_key_path = self.directory / "ssh_host_ed25519_key"
        self.log_path = self.directory / "sshd.log"
        self._bed = bed
        self._config_path = self.directory / "sshd_config"
        self._pid_file = self.directory / "sshd.pid"
        self._shims = self.directory / "pyenv-shims"  # the host's own (sshbed_home.py)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host_public_key = write_ed25519_key(self.host_key_path, f"{self.name}-host-key")
        self._trusted_key = self.host_public_key
        self.extra_sshd_config = ""
        """sshd_config lines of this host only (``HostCertificate ...``); see :meth:`configure`."""

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.alive else "down"
        return f"<SshHost {self.name} {self.address}:{self.port} {state}>"

    @property
    def address(self) -> str:
        """The address clients connect to: sshd's, or its relay's."""
        return self.relay.address[0] if self.relay else self.sshd_address

    @property
    def port(self) -> int:
        """The port clients connect to: sshd's, or its relay's."""
        return self.relay.address[1] if self.relay else self.sshd_port

    @property
    def pid(self) -> int | None:
        """Pid of the sshd listener, or None when the host is down."""
        return self._proc.pid if self.alive and self._proc else None

    @property
    def alive(self) -> bool:
        """Whether the listener runs (it may still refuse while starting)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def known_hosts_line(self) -> str:
        """This host's line in ``known_hosts``: ``[127.0.0.X]:port ssh-ed25519 AAAA...``."""
        return self._key_line(self.address, self.port)

    def known_hosts_lines(self) -> str:
        """Every line of this host in ``known_hosts``: behind a relay, one for sshd's own
        address too (where a bastion reaches it, :meth:`SshBed.behind`)."""
        places = dict.fromkeys([(self.address, self.port), (self.sshd_address, self.sshd_port)])
        return "".join(self._key_line(address, port) + "\n" for address, port in places)

    def _key_line(self, address: str, port: int) -> str:
        where = address if port == 22 else f"[{address}]:{port}"
        return f"{where} {self._trusted_key}"  # port 22 goes without brackets (OpenSSH's way)

    def start(self) -> None:
        """Start sshd (again) on the same address, port and host key; wait until it answers."""
        if self.alive:
            return
        self._spawn()
        self._await_ready(may_move=False)

    def stop(self) -> None:
        """The host goes down: kill the listener and every session, wait until the port refuses."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                kill_sessions_of(proc.pid, kill_listener=True)
        finally:  # the listener got SIGKILL even if a session would not die
            proc.wait(timeout=STOP_TIMEOUT)
            self._pid_file.unlink(missing_ok=True)
            self._drop_rehash_lock()
        address = (self.sshd_address, self.sshd_port)
        with contextlib.suppress(OSError), socket.create_connection(address, 1):
            raise SshBedError(f"{self.name}: port {self.sshd_port} accepts after sshd stopped")

    def session_pids(self) -> list[int]:
        """Pids of every process below the listener: sshd session processes and commands."""
        return descendants(self._proc.pid) if self._proc and self.alive else []

    def kill_sessions(self) -> list[int]:
        """Kill every session (connections drop) but keep the listener; return the pids."""
        if not (self._proc and self.alive):
            return []
        killed = kill_sessions_of(self._proc.pid, kill_listener=False)
        self._drop_rehash_lock()
        return killed

    def _drop_rehash_lock(self) -> None:
        """Every session of the host is dead: a rehash lock in its own shims is a leftover
        of one killed mid-rehash (else every later login waits for it)."""
        (self._shims / LOCK_NAME).unlink(missing_ok=True)

    def sshd_session_pids(self) -> list[int]:
        """Pids of the sshd processes serving connections (``sshd: user [priv]``,
        ``sshd: user@notty``): not the listener, not the commands they run."""
        return [pid for pid in self.session_pids() if cmdline(pid).startswith(b"sshd: ")]

    def kill_sshd_sessions(self) -> list[int]:
        """Kill the sshd session processes only: every connection drops, the commands
        they started (an agent) live on, seeing their stdin end. Return the pids."""
        pids = self.sshd_session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def pause_sessions(self) -> list[int]:
        """A network partition: SIGSTOP the sshd session processes (nothing passes, nothing
        ends). Return the pids, for :meth:`resume_sessions`."""
        pids = self.sshd_session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return pids

    def resume_sessions(self, pids: list[int]) -> None:
        """End a partition made by :meth:`pause_sessions`."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def partition(self) -> None:
        """A real partition (isolated beds): pull the host's cable. Nothing passes either
        way, nothing is reset: open connections and new ones see silence."""
        self._need_net("partition").partition()

    def heal(self) -> None:
        """End :meth:`partition`: the link is back, open connections go on."""
        self._need_net("heal").heal()

    def run(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` on the host (isolated: inside its namespace, where 127.0.0.1 is
        the host's own loopback); killed when the bed stops. ``popen``: Popen's options."""
        command = self.net.exec_argv(argv) if self.net else argv
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("start_new_session", True)
        proc: subprocess.Popen[bytes] = subprocess.Popen(command, **popen)
        self._runs.append(proc)
        return proc

    def _need_net(self, what: str) -> Any:
        if self.net is None:
            raise SshBedError(f"{self.name}: {what}() needs a bed made with isolated=True")
        return self.net

    def _discard(self) -> None:
        """The bed stops: the relay, what :meth:`run` started, and the namespace go."""
        relay, self.relay = self.relay, None
        if relay is not None:
            relay.stop()
        for proc in self._runs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        self._runs.clear()
        if self.net is not None:
            self.net.destroy()

    def replace_host_key(self, *, trust: bool = False) -> None:
        """Give the host a new host key, so clients see a changed key.

        ``known_hosts`` keeps the old key unless ``trust``. sshd before 9.8 re-reads its
        key for each connection (it re-executes itself), so sessions live on; from 9.8 the
        listener holds the keys, and a running host restarts.
        """
        self.host_public_key = write_ed25519_key(self.host_key_path, f"{self.name}-host-key")
        if trust:
            self._trusted_key = self.host_public_key
            self._bed.write_client_files()
        if self.alive and self._bed.sshd_version >= (9, 8):
            self.stop()
            self.start()

    def configure(self, extra_sshd_config: str) -> None:
        """Give this host's sshd extra ``sshd_config`` lines; a running host restarts (same
        address, port and key) to read them. ``""`` takes them away again."""
        self.extra_sshd_config = extra_sshd_config
        if self.alive:
            self.stop()
            self.start()

    def _spawn(self) -> None:
        if self.net is not None and not self.net.created:
            self.net.create()
        reservation = None
        if self.sshd_port == 0:  # a port no other bed holds now; freed just before sshd binds it
            reservation = socket.socket()
            reservation.bind((self.sshd_address, 0))
            self.sshd_port = reservation.getsockname()[1]
        self._config_path.write_text(self._bed.sshd_config_text(self))
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        if reservation is not None:
            reservation.close()
        with self.log_path.open("ab") as log:
            argv = [SSHD_PATH, "-D", "-e", "-f", str(self._config_path)]
            argv = own_shims_argv(argv, self._shims, own_mounts=self.net is not None)
            self._proc = subprocess.Popen(
                self.net.exec_argv(argv) if self.net else argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal must not reach it; we stop it
            )
        self._pid_file.write_text(str(self._proc.pid))

    def _await_ready(self, *, may_move: bool) -> None:
        """Wait for the banner; on a port taken meanwhile, move to another if ``may_move``."""
        for _ in range(_BIND_ATTEMPTS):
            if self._wait_banner():
                return
            if not (may_move and "Address already in use" in self._log_tail()):
                break
            self.sshd_port = 0
            self._spawn()
        log = self._log_tail()
        self.stop()
        raise SshBedError(f"{self.name}: sshd exited at start; its log:\n{log}")

    def _wait_banner(self) -> bool:
        """True once a connection gets the SSH banner, False if sshd exited first."""
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            address = (self.sshd_address, self.sshd_port)
            with contextlib.suppress(OSError), socket.create_connection(address, 1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=0.01)  # the retry interval, cut short if sshd exits
        log = self._log_tail()
        self.stop()
        raise SshBedError(f"{self.name}: no SSH banner after {READY_TIMEOUT} s; log:\n{log}")

    def _log_tail(self, limit: int = 4000) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")[-limit:]


class SshBed:
    """``count`` real sshd servers on 127.0.0.2, 127.0.0.3, ... and the client files for them."""

    def __init__(
        self,
        root_dir: Path,
        count: int = 3,
        *,
        isolated: bool | None = None,
        rtt_ms: float = 0.0,
    ) -> None:
        """Prepare a bed in ``root_dir`` (created if missing); :meth:`start` starts it.

        ``isolated``: each host a separate machine on the network (a namespace of its
        own; :class:`IsolationUnavailableError` at start where none can be made); None:
        as ``ACTORCLUSTER_TEST_ISOLATED`` says (``1``: isolated; unset: not).
        ``rtt_ms``: clients reach each host through a relay adding that round-trip time.
        """
        self.root = Path(root_dir).resolve()
        if _UNSAFE_PATH_CHARS & set(str(self.root)):
            raise ValueError(f"bed directory must not contain spaces, quotes or %: {self.root}")
        self.count = count
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.ssh_config = self.root / "ssh_config"
        self.known_hosts = self.root / "known_hosts"
        self.client_key = self.root / "id_ed25519"
        self._authorized_keys = self.root / "authorized_keys"
        self._hosts: list[SshHost] = []
        self._sftp_server = ""
        self.sshd_version = (0, 0)
        self._extra_sshd_config = ""
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.isolated = ISOLATED if isolated is None else isolated
        self.rtt_ms = rtt_ms
        self.net_block: NetBlock | None = None
        """The bed's 10.B.0.0/16 while it runs (isolated beds)."""

    def __repr__(self) -> str:
        return f"<SshBed {self.root} hosts={self._hosts}>"

    def __enter__(self) -> SshBed:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def hosts(self) -> list[SshHost]:
        """The hosts, ``host-1`` first."""
        return list(self._hosts)

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that point an actorcluster ``Runtime`` at this bed."""
        return {"ssh_config_path": str(self.ssh_config)}

    def start(self) -> SshBed:
        """Write the keys, start every sshd (in parallel) and wait until each answers."""
        if self._watchdog is not None:
            return self
        self._sftp_server = _check_prerequisites(self.user)
        remove_stale_pyenv_lock()  # else every login here waits for it (see there)
        self.sshd_version = _sshd_version()
        if self.sshd_version >= (9, 8):  # else killed sessions and probes get 127.0.0.1 banned
            self._extra_sshd_config = "PerSourcePenalties no\n"
        self.root.mkdir(parents=True, exist_ok=True)
        client_public = write_ed25519_key(self.client_key, "sshbed-client")
        self._authorized_keys.write_text(client_public + "\n")
        if self.isolated:
            self._claim_block()
        self._start_watchdog()
        try:
            hosts = self._hosts or [self._new_host() for _ in range(self.count)]
            for index, host in enumerate(hosts, 1):  # a bed started again keeps its hosts,
                if self.net_block is not None:  # keys and ports (isolated: a new block)
                    host.net = self.net_block.host(index)
                    host.sshd_address = host.net.address
                host._spawn()
            for host in hosts:
                host._await_ready(may_move=True)
                self._start_relay(host)
            self.write_client_files()
        except BaseException:
            self.stop()
            raise
        return self

    def add_host(self) -> SshHost:
        """Start one more host (``host-N+1``) and add it to ``ssh_config`` and ``known_hosts``."""
        if self._watchdog is None:
            raise SshBedError("start the bed before adding hosts")
        host = self._new_host()
        try:
            host._spawn()
            host._await_ready(may_move=True)
            self._start_relay(host)
        except BaseException:
            self._hosts.remove(host)
            host._discard()
            raise
        self.write_client_files()
        return host

    def stop(self) -> None:
        """Kill every sshd and every session of the bed. Idempotent; also runs at exit."""
        errors: list[Exception] = []
        for host in reversed(self._hosts):
            try:
                host.stop()
            except (SshBedError, ProcessTreeError) as error:
                errors.append(error)
            host._discard()
        block, self.net_block = self.net_block, None
        if block is not None:
            (self.root / "netblock").unlink(missing_ok=True)
            block.release()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            assert watchdog.stdin is not None
            watchdog.stdin.close()  # EOF: it checks the pid files, finds none, exits
            watchdog.wait(timeout=STOP_TIMEOUT)
        atexit.unregister(self.stop)
        if errors:
            raise errors[0]

    def write_client_files(self) -> None:
        """(Re)write ``ssh_config`` and ``known_hosts`` from the hosts' addresses and keys."""
        blocks = [
            f"Host {h.name}\n    HostName {h.address}\n    Port {h.port}\n    User {self.user}\n"
            f"    IdentityFile {self.client_key}\n    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {self.known_hosts}\n    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            for h in self._hosts
        ]
        _write_atomic(self.known_hosts, "".join(h.known_hosts_lines() for h in self._hosts))
        _write_atomic(self.ssh_config, "\n".join(blocks))

    def behind(self, bastion: SshHost, host: SshHost) -> tuple[str, int]:
        """Put ``host`` behind ``bastion``: the address and port at which the bastion
        reaches ``host``'s sshd (a ``ProxyJump`` target's ``HostName`` and ``Port``).

        Isolated hosts do not reach each other, so this gives the two a private link of
        their own first, as a bastion has a leg in the network of the hosts behind it
        (``sshbed_net.link``); on loopback they share this machine's addresses already.
        """
        if bastion.net is not None and host.net is not None:
            link(bastion.net, host.net)
        return host.sshd_address, host.sshd_port

    def write_jump_config(self, path: Path, name: str = "behind-the-jump") -> Path:
        """An ssh_config at ``path``: the bed's, and ``name`` reaching host-2 through
        host-1 (``ProxyJump``; see :meth:`behind`)."""
        address, port = self.behind(self._hosts[0], self._hosts[1])
        path.write_text(
            f"Host {name}\n    HostName {address}\n    Port {port}\n"
            f"    User {self.user}\n    IdentityFile {self.client_key}\n"
            f"    UserKnownHostsFile {self.known_hosts}\n    ProxyJump host-1\n\n"
            + self.ssh_config.read_text()
        )
        return path

    def sshd_config_text(self, host: SshHost) -> str:
        """The sshd_config of ``host``: key login only, as the current user, log to stderr."""
        return (
            f"ListenAddress {host.sshd_address}:{host.sshd_port}\n"
            f"HostKey {host.host_key_path}\n"
            f"PidFile none\nAuthorizedKeysFile {self._authorized_keys}\nStrictModes no\n"
            "UsePAM no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "AllowTcpForwarding yes\nX11Forwarding no\nPrintMotd no\nPrintLastLog no\n"
            "UseDNS no\nMaxSessions 200\nMaxStartups 200\nLogLevel VERBOSE\n"
            f"Subsystem sftp {self._sftp_server}\n"
            # Tests kill sessions mid-login; a shell rc running `pyenv rehash` then leaves
            # its lock behind and every later login waits 60 s for it. Cap that wait.
            "SetEnv PYENV_REHASH_TIMEOUT=2\n"
            f"{self._extra_sshd_config}{host.extra_sshd_config}"
        )

    def _claim_block(self) -> None:
        """Isolated beds: check namespaces can be made, claim a 10.B.0.0/16 of our own."""
        if self.net_block is not None:
            return
        obstacle = isolation_obstacle()
        if obstacle is not None:
            raise IsolationUnavailableError(f"isolated hosts are not possible here: {obstacle}")
        self.net_block = NetBlock()
        _write_atomic(self.root / "netblock", str(self.net_block.block))

    def _start_relay(self, host: SshHost) -> None:
        """``rtt_ms`` beds: a relay before the host's sshd (on this side of its link)."""
        if self.rtt_ms <= 0 or host.relay is not None:
            return
        listen = host.net.gateway if host.net else host.sshd_address
        host.relay = LatencyRelay(
            (host.sshd_address, host.sshd_port), self.rtt_ms, listen=(listen, 0)
        ).start()

    def _new_host(self) -> SshHost:
        if len(self._hosts) >= 253:
            raise SshBedError("a bed has at most 253 hosts (127.0.0.2 to 127.0.0.254)")
        host = SshHost(self, len(self._hosts) + 1)
        self._hosts.append(host)
        return host

    def _start_watchdog(self) -> None:
        """A process that kills the bed's sshd trees when our end of its stdin closes."""
        program = Path(__file__).resolve().with_name("sshbed_teardown.py")
        held = (self.net_block.lock_fd,) if self.net_block else ()  # the block's lock lives on
        with (self.root / "watchdog.log").open("ab") as log:
            self._watchdog = subprocess.Popen(
                [sys.executable, str(program), str(self.root)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=held,
            )
        atexit.register(self.stop)


def _main(argv: list[str]) -> None:
    """``sshbed.py DIR [COUNT] [--isolated] [--rtt MS]``: run a bed until Ctrl-C or EOF
    on stdin."""
    import argparse

    parser = argparse.ArgumentParser(prog="sshbed.py")
    parser.add_argument("root", type=Path)
    parser.add_argument("count", type=int, nargs="?", default=3)
    parser.add_argument("--isolated", action="store_true", help="hosts in namespaces")
    parser.add_argument("--rtt", type=float, default=0.0, help="round-trip time to add, ms")
    args = parser.parse_args(argv)
    with SshBed(args.root, args.count, isolated=args.isolated or None, rtt_ms=args.rtt) as bed:
        print(f"ssh -F {bed.ssh_config} host-1  ({len(bed.hosts)} hosts); Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()


if __name__ == "__main__":
    _main(sys.argv[1:])
