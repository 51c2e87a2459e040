"""Opening an authenticated SSH connection to an :class:`SshTarget`.

:func:`connect` returns an :class:`SshConnection`, a connected and authenticated
``paramiko.Transport`` (through ProxyJump hosts if the target has them). Host keys are
checked by :mod:`actorcluster.ssh.hostkeys`; every paramiko or socket error becomes an
:mod:`actorcluster.errors` type (see :mod:`actorcluster.ssh.translate`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from functools import partial
from typing import TYPE_CHECKING

import paramiko

from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError, HostUnreachableError
from actorcluster.ssh.agent_stream import ChannelStream
from actorcluster.ssh.hostkeys import HostKeyVerifier
from actorcluster.ssh.translate import ssh_errors
from actorcluster.ssh.transport import ClientTransport

if TYPE_CHECKING:
    from types import TracebackType

    from actorcluster.ssh.config import SshTarget

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "DEFAULT_WINDOW_SIZE",
    "PARAMIKO_LOG_CHANNEL",
    "SshConnection",
    "connect",
]

log = get_logger(__name__)

PARAMIKO_LOG_CHANNEL = "actorcluster.ssh.paramiko"
"""The stdlib logger paramiko's own messages go to. Its errors reach the caller as our
exceptions, so by default they are not printed (Python's last-resort handler would show
each failed connect's traceback); configure this logger to see them."""
logging.getLogger(PARAMIKO_LOG_CHANNEL).addHandler(logging.NullHandler())

DEFAULT_WINDOW_SIZE = 16 * 2**20
"""Channel window: large, so one channel is not throttled waiting for window updates."""
DEFAULT_MAX_PACKET_SIZE = 2**15
"""Largest data packet asked of the server (OpenSSH's own default)."""


class SshConnection:
    """A connected, authenticated SSH connection to one host, and its jump hosts.

    Use :func:`connect` to make one. Closing it closes the jump connections too.
    """

    def __init__(
        self, target: SshTarget, client: paramiko.SSHClient, jump: SshConnection | None = None
    ) -> None:
        """Wrap ``client`` (connected to ``target``), which owns ``jump`` if given."""
        transport = client.get_transport()
        if transport is None:
            raise ValueError("SshConnection needs a connected SSHClient")
        self._target = target
        self._client = client
        self._transport = transport
        self._jump = jump
        self._closed = False

    def __repr__(self) -> str:
        state = "active" if self.is_active() else "closed"
        return f"<SshConnection {self._target.alias} {self._target.address} {state}>"

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def target(self) -> SshTarget:
        """The target this connection was made to."""
        return self._target

    @property
    def transport(self) -> paramiko.Transport:
        """The underlying paramiko transport (for the SSH boundary's users only)."""
        return self._transport

    @property
    def cipher(self) -> str:
        """The cipher negotiated for data sent to the host."""
        return str(getattr(self._transport, "local_cipher", ""))

    def is_active(self) -> bool:
        """Whether the connection is open and authenticated."""
        return (
            not self._closed and self._transport.is_active() and self._transport.is_authenticated()
        )

    def open_session(
        self,
        window_size: int = DEFAULT_WINDOW_SIZE,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        timeout: float | None = None,
    ) -> paramiko.Channel:
        """Open a session channel (to run a command on).

        Raises:
            HostUnreachableError: the connection is closed, or the host refused.
        """
        limit = self._target.channel_timeout if timeout is None else timeout
        action = f"opening a session on {self._target.address}"
        self.check_open(action)
        with ssh_errors(self._target, action, limit):
            return self._transport.open_session(window_size, max_packet_size, limit)

    def open_command_stream(
        self, command: str, *, window_size: int, timeout: float
    ) -> ChannelStream:
        """Run ``command`` on a new session channel; its stdin/stdout as a byte stream.

        Args:
            command: the shell command line (the agent's first stage).
            window_size: the channel's receive window.
            timeout: seconds a send may make no progress before it fails.

        Raises:
            HostUnreachableError: the connection is closed, or the host refused.
        """
        channel = self.open_session(window_size=window_size)
        action = f"starting a command on {self._target.address}"
        with ssh_errors(self._target, action, self._target.channel_timeout):
            channel.exec_command(command)
        return ChannelStream(channel, timeout)

    def run(self, command: str, timeout: float) -> int:
        """Run a shell command on a new session channel; its exit status (-1 if it did
        not end within ``timeout`` seconds: the channel is closed then).

        Raises:
            HostUnreachableError: the connection is closed, or the host refused.
        """
        channel = self.open_session(window_size=65536)
        try:
            with ssh_errors(self._target, f"running a command on {self._target.address}", timeout):
                channel.settimeout(timeout)
                channel.exec_command(command)
                if channel.status_event.wait(timeout):
                    return channel.recv_exit_status()
                return -1
        finally:
            channel.close()

    def open_direct_tcpip(
        self,
        dest: tuple[str, int],
        src: tuple[str, int] = ("127.0.0.1", 0),
        timeout: float | None = None,
        window_size: int = DEFAULT_WINDOW_SIZE,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> paramiko.Channel:
        """Open a channel the host connects to ``dest`` (``host``, ``port``), as ``ssh -L``.

        Raises:
            HostUnreachableError: the connection is closed, or the host could not (or
                would not) connect to ``dest``; ``ConnectionRefusedHostError`` if refused.
        """
        limit = self._target.channel_timeout if timeout is None else timeout
        action = f"tunnel from {self._target.address} to {dest[0]}:{dest[1]}"
        self.check_open(action)
        with ssh_errors(self._target, action, limit):
            return self._transport.open_channel(
                "direct-tcpip", dest, src, window_size, max_packet_size, limit
            )

    def close(self) -> None:
        """Close the connection, then its jump hosts'. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._client.close()
        if self._jump is not None:
            self._jump.close()
        log.debug("ssh.connection.closed", host=self._target.alias)

    def check_open(self, action: str) -> None:
        """Raise :class:`HostUnreachableError` (naming ``action``) unless active."""
        if not self.is_active():
            why = "was closed" if self._closed else "was lost"
            raise HostUnreachableError(self._target.alias, f"{action}: the connection {why}")


def connect(target: SshTarget) -> SshConnection:
    """Connect to ``target`` (through its jump hosts), verify its key and log in.

    Raises:
        UnknownHostError: the host name does not resolve.
        ConnectionRefusedHostError: nothing listens on the host's port.
        HostUnreachableError: a timeout (the reason says which, after how long), an SSH
            protocol error, or the connection dropped.
        UnknownHostKeyError: the host's key is not in known_hosts and new keys are not
            trusted.
        HostKeyChangedError: the host's key differs from the one in known_hosts.
        AuthenticationError: no key or password was accepted (the reason lists what
            was tried).
    """
    started = time.monotonic()
    via = target.proxy_jump.alias if target.proxy_jump is not None else None
    log.info("ssh.connect.started", host=target.alias, address=target.address, via=via)
    jump: SshConnection | None = None
    try:
        jump = connect(target.proxy_jump) if target.proxy_jump is not None else None
        client = _handshake(target, _open_socket(target, jump))
    except BaseException as exc:
        if jump is not None:
            jump.close()
        if isinstance(exc, ActorClusterError):
            seconds = round(time.monotonic() - started, 3)
            # The caller gets the error: a warning here would say it twice.
            log.debug("ssh.connect.failed", host=target.alias, error=str(exc), seconds=seconds)
        raise
    connection = SshConnection(target, client, jump)
    if target.server_alive_interval > 0:
        connection.transport.set_keepalive(max(1, round(target.server_alive_interval)))
    seconds = round(time.monotonic() - started, 3)
    log.info("ssh.connect.succeeded", host=target.alias, seconds=seconds, cipher=connection.cipher)
    return connection


def _open_socket(target: SshTarget, jump: SshConnection | None) -> socket.socket | paramiko.Channel:
    """A TCP socket to the host, or a ``direct-tcpip`` channel to it through ``jump``."""
    if jump is not None:
        action = f"tunnel through {jump.target.alias} to {target.address}"
        with ssh_errors(target, action, target.connect_timeout):
            return jump.transport.open_channel(
                "direct-tcpip",
                (target.hostname, target.port),
                ("127.0.0.1", 0),
                DEFAULT_WINDOW_SIZE,
                DEFAULT_MAX_PACKET_SIZE,
                target.connect_timeout,
            )
    with ssh_errors(target, f"TCP connect to {target.address}", target.connect_timeout):
        sock = socket.create_connection((target.hostname, target.port), target.connect_timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _handshake(target: SshTarget, sock: socket.socket | paramiko.Channel) -> paramiko.SSHClient:
    """Run the SSH handshake, host key check and login over ``sock``."""
    client = paramiko.SSHClient()  # holds no host keys: every key reaches the verifier
    client.set_missing_host_key_policy(HostKeyVerifier(target))
    client.set_log_channel(PARAMIKO_LOG_CHANNEL)
    key_files = [path for path in target.identity_files if os.path.isfile(path)]
    try:
        with ssh_errors(target, f"SSH handshake with {target.address}", target.connect_timeout):
            client.connect(
                target.hostname,
                port=target.port,
                username=target.user,
                password=target.password,
                pkey=target.pkey,
                key_filename=key_files,  # type: ignore[arg-type]  # paramiko takes a list too
                timeout=target.connect_timeout,
                allow_agent=target.allow_agent,
                look_for_keys=target.look_for_keys,
                sock=sock,
                banner_timeout=target.banner_timeout,
                auth_timeout=target.auth_timeout,
                channel_timeout=target.channel_timeout,
                passphrase=target.passphrase,
                transport_factory=partial(ClientTransport, target=target),
            )
    except BaseException:
        client.close()
        sock.close()
        raise
    return client
