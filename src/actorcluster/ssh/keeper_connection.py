"""A runtime's SSH connection held by the user's keeper: ``Runtime(host, keeper=True)``.

The keeper (the command line's, see :mod:`actorcluster.keeper`) holds the connection;
this process opens channels on it through the keeper's Unix socket
(:mod:`actorcluster.cli.keeper_channels` is the other side), so a short script skips the
connect, and many scripts share one connection per host (as OpenSSH's ControlPersist).
:class:`KeeperConnection` has the :class:`SshConnection` methods a runtime uses: the
agent's stream (:class:`SocketStream`) and ``run`` go through the keeper; whatever needs
paramiko's transport here (``-R`` tunnels with the paramiko carrier, plain session
channels) opens a direct connection on first use, so every feature keeps working.

:func:`keeper_connect` picks: the keeper when it can be used, else (keepers turned off
with ``ACTORCLUSTER_KEEPER=0``, no private runtime folder, settings that cannot be sent,
a keeper that would not start) a direct connection, said once at info.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import select
import socket
import threading
import weakref
from typing import TYPE_CHECKING, Any

from actorcluster._limits import Deadline
from actorcluster._logging import get_logger
from actorcluster.errors import ActorClusterError, HostUnreachableError
from actorcluster.keeper import finder, paths
from actorcluster.ssh.connect import SshConnection, connect

if TYPE_CHECKING:
    import paramiko

    from actorcluster.ssh.config import SshTarget

__all__ = ["KeeperConnection", "SocketStream", "UnixEnd", "keeper_connect"]

log = get_logger(__name__)

_STDERR_KEEP = 64 * 1024
_SOCKET_BUFFER = 1 << 20
_ASK_TIMEOUT = 10.0
"""Seconds a quick request (``alive``) may take."""
_said: set[str] = set()
_said_lock = threading.Lock()


class KeeperUnavailableError(OSError):
    """The keeper could not be reached or did not understand (then connect directly)."""


def _say_once(reason: str, host: str) -> None:
    with _said_lock:
        if reason in _said:
            return
        _said.add(reason)
    log.info("ssh.keeper.unused", host=host, reason=reason)


def keeper_connect(host: str, target: SshTarget, kwargs_json: str | None) -> SshConnection:
    """A connection to ``target`` held by the user's keeper for its ssh_config (started
    if there is none), or a direct one where a keeper cannot be used.

    Args:
        host: the host as the runtime names it.
        target: where to connect (resolved here; the keeper resolves it the same way).
        kwargs_json: the runtime's SSH connection settings as JSON; None: they cannot
            travel to the keeper (a key object), so the connection is direct.

    Raises:
        ActorClusterError: as :func:`actorcluster.ssh.connect` (the keeper's connect
            raises the same typed errors, sent back here).
    """
    if kwargs_json is None:
        _say_once("connection settings that cannot be sent to a keeper", host)
        return connect(target)
    if not paths.keeper_allowed():
        _say_once(f"keepers are turned off (${paths.ENABLE_ENV})", host)
        return connect(target)
    kwargs = json.loads(kwargs_json)
    config = kwargs.get("ssh_config_path")
    found = finder.find_keeper(config if isinstance(config, str) else None)
    if found is None:
        _say_once("no private runtime folder, or the keeper would not start", host)
        return connect(target)
    sock, key, path = found
    sock.close()
    connection = KeeperConnection(target, host, kwargs, path, key)
    try:
        connection.open()
    except KeeperUnavailableError as exc:
        _say_once(f"the keeper did not answer: {exc}", host)
        return connect(target)
    return connection


class KeeperConnection(SshConnection):
    """One connection the keeper holds, used through its socket.

    Args:
        target: where the keeper connects (for errors and direct fallbacks).
        host: the host as the runtime names it (the keeper resolves it again).
        kwargs: the runtime's SSH connection settings.
        path: the keeper's socket.
        key: the keeper's name (it serves only requests naming it).
    """

    def __init__(  # no SshConnection.__init__: this one has no paramiko client here
        self, target: SshTarget, host: str, kwargs: dict[str, Any], path: str, key: str
    ) -> None:
        self._target = target
        self._closed = False
        self._host = host
        self._kwargs = kwargs
        self._path = path
        self._key = key
        self._serial: int | None = None
        self._cipher = ""
        self._direct: SshConnection | None = None
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[SocketStream] = weakref.WeakSet()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"conn {self._serial}"
        return f"<KeeperConnection {self._target.alias} via {self._path} {state}>"

    def open(self) -> None:
        """Have the keeper connect (or find its connection up).

        Raises:
            ActorClusterError: the keeper's connect failed (typed as a direct one).
            KeeperUnavailableError: the keeper did not answer.
        """
        target = self._target
        limit = target.connect_timeout + target.banner_timeout + target.auth_timeout + 5
        sock, answer, _ = self._request({"op": "open"}, limit, lost_is_unreachable=False)
        sock.close()
        self._serial = int(answer["conn"])
        self._cipher = str(answer.get("cipher", ""))

    @property
    def cipher(self) -> str:
        """The cipher the keeper's connection negotiated."""
        return self._cipher

    @property
    def transport(self) -> paramiko.Transport:
        """The transport of a direct connection, opened on first use (``-R`` tunnels)."""
        return self._direct_connection().transport

    def is_active(self) -> bool:
        """Whether the keeper still holds this connection, up."""
        if self._closed or self._serial is None:
            return False
        answer = finder.ask(self._path, self._body({"op": "alive"}), timeout=_ASK_TIMEOUT)
        return bool(answer and answer.get("alive"))

    def open_session(
        self,
        window_size: int = 2**21,
        max_packet_size: int = 2**15,
        timeout: float | None = None,
    ) -> paramiko.Channel:
        """A session channel on a direct connection (nothing in the runtime needs one)."""
        return self._direct_connection().open_session(window_size, max_packet_size, timeout)

    def open_command_stream(  # type: ignore[override]  # a stream over the keeper
        self, command: str, *, window_size: int, timeout: float
    ) -> SocketStream:
        """Run ``command`` on a channel the keeper opens; its stdin/stdout as a stream.

        Raises:
            HostUnreachableError: the connection is lost (or the keeper went away).
        """
        self.check_open(f"starting a command on {self._target.address}")
        read_end, write_end = os.pipe()
        try:
            request = {"op": "channel", "command": command, "window_size": window_size}
            sock, _, pending = self._request(request, self._target.channel_timeout, [write_end])
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        stream = SocketStream(sock, read_end, pending, timeout)
        self._streams.add(stream)
        if self._closed:  # closed meanwhile
            stream.abort()
        return stream

    def run(self, command: str, timeout: float) -> int:
        """Run a shell command on a channel of the keeper's; its exit status (-1 if it
        did not end within ``timeout`` seconds).

        Raises:
            HostUnreachableError: the connection is lost (or the keeper went away).
        """
        self.check_open(f"running a command on {self._target.address}")
        request = {"op": "exec", "command": command, "timeout": timeout}
        sock, answer, _ = self._request(request, timeout + self._target.channel_timeout)
        sock.close()
        return int(answer["exit"])

    def open_forward(self, dest: tuple[str, int], src: tuple[str, int]) -> UnixEnd:
        """A ``direct-tcpip`` channel the keeper opens (``ssh -L``: the host connects
        to ``dest``), as one end of a relay.

        Raises:
            HostUnreachableError: the connection is lost, the keeper went away, or the
                host could not (or would not) connect to ``dest``.
        """
        self.check_open(f"tunnel from {self._target.address} to {dest[0]}:{dest[1]}")
        request = {"op": "forward", "to": list(dest), "peer": list(src)}
        sock, _, pending = self._request(request, self._target.channel_timeout)
        return UnixEnd(sock, pending)

    def open_direct_tcpip(
        self,
        dest: tuple[str, int],
        src: tuple[str, int] = ("127.0.0.1", 0),
        timeout: float | None = None,
        window_size: int = 2**24,
        max_packet_size: int = 2**15,
    ) -> paramiko.Channel:
        """A ``direct-tcpip`` channel on a direct connection (tunnels use
        :meth:`open_forward`, through the keeper)."""
        direct = self._direct_connection()
        return direct.open_direct_tcpip(dest, src, timeout, window_size, max_packet_size)

    def close(self) -> None:
        """End the streams opened through the keeper (the keeper keeps its connection)
        and the direct connection, if one. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            direct, self._direct = self._direct, None
        for stream in list(self._streams):
            stream.abort()
        if direct is not None:
            direct.close()

    def check_open(self, action: str) -> None:
        """Raise :class:`HostUnreachableError` (naming ``action``) unless active."""
        if self._closed:
            raise HostUnreachableError(self._target.alias, f"{action}: the connection was closed")

    def _direct_connection(self) -> SshConnection:
        with self._lock:
            if self._closed:
                raise HostUnreachableError(self._target.alias, "the connection was closed")
            if self._direct is None or not self._direct.is_active():
                log.info("ssh.keeper.direct", host=self._host, reason="a transport of our own")
                self._direct = connect(self._target)
            return self._direct

    def _body(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"key": self._key, "host": self._host, "kwargs": self._kwargs}
        body.update(request)
        if self._serial is not None:
            body["conn"] = self._serial
        return body

    def _request(
        self,
        request: dict[str, Any],
        timeout: float,
        fds: list[int] | None = None,
        *,
        lost_is_unreachable: bool = True,
    ) -> tuple[socket.socket, dict[str, Any], bytes]:
        """Send ``request`` (with ``fds``); the socket, the answer and what came after it.

        Raises:
            ActorClusterError: the keeper answered with an error (raised here again).
            HostUnreachableError: the keeper is gone (``lost_is_unreachable``).
            KeeperUnavailableError: the keeper is gone (otherwise).
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self._path)
            payload = json.dumps(self._body(request)).encode() + b"\n"
            socket.send_fds(sock, [payload], fds or [])
            answer, pending = _answer_line(sock)
        except (OSError, ValueError) as exc:
            sock.close()
            if lost_is_unreachable:
                raise HostUnreachableError(
                    self._target.alias, f"the connection keeper went away: {exc}"
                ) from exc
            raise KeeperUnavailableError(str(exc)) from exc
        if "error" in answer:
            sock.close()
            raise _error_from(answer, self._target.alias)
        if answer.get("run_here"):
            sock.close()
            if lost_is_unreachable:
                raise HostUnreachableError(self._target.alias, "the connection keeper is stopping")
            raise KeeperUnavailableError("the keeper is stopping")
        sock.settimeout(None)
        return sock, answer, pending


def _answer_line(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    """The keeper's one-line answer, and the bytes that followed it."""
    received = b""
    while b"\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the keeper closed the connection without an answer")
        received += chunk
    line, pending = received.split(b"\n", 1)
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError(f"the keeper answered {line[:100]!r}")
    return answer, pending


def _error_from(answer: dict[str, Any], host: str) -> ActorClusterError:
    """The error the keeper sent: the exception itself where it is one of ours
    (pickled by the user's own keeper, in the user's private folder)."""
    pickled = answer.get("pickled")
    if isinstance(pickled, str):
        with contextlib.suppress(Exception):
            error = pickle.loads(base64.b64decode(pickled))  # our own keeper, in our private folder
            if isinstance(error, ActorClusterError):
                return error
    return HostUnreachableError(host, f"{answer.get('kind')}: {answer.get('error')}")


class SocketStream:
    """An agent's stream through the keeper: its stdin and stdout over the Unix
    socket, its stderr over a pipe (a :class:`~actorcluster.remote.streams.ByteStream`).

    Args:
        sock: the connected socket, the keeper splicing it to the channel.
        stderr_fd: the read end of the pipe the keeper copies the channel's stderr to.
        pending: bytes of the channel that came with the keeper's answer.
        timeout: seconds a receive without a timeout of its own waits.
    """

    def __init__(self, sock: socket.socket, stderr_fd: int, pending: bytes, timeout: float) -> None:
        with contextlib.suppress(OSError):  # the keeper's data waits here, in large reads
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        sock.setblocking(False)
        os.set_blocking(stderr_fd, False)
        self._sock = sock
        self._err_fd = stderr_fd
        self._err: int | None = stderr_fd
        self._pending = pending
        self._timeout = timeout
        self._stderr = bytearray()
        self._lock = threading.Lock()
        self._released = False

    def __repr__(self) -> str:
        return f"<SocketStream fd {self._sock.fileno()}>"

    def recv(self, size: int, timeout: float | None = None) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end; TimeoutError after ``timeout``
        seconds (the stream's own timeout when None). Drains stderr on the way."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        deadline = Deadline(self._timeout if timeout is None else timeout)
        while True:
            err = self._err
            watched: list[socket.socket | int] = [self._sock] if err is None else [self._sock, err]
            ready, _, _ = select.select(watched, [], [], deadline.timeout())
            if not ready:
                raise TimeoutError(f"no data from the agent within {deadline.seconds} s")
            if err is not None and err in ready:
                self._drain_stderr()
            if self._sock in ready:
                try:
                    return self._sock.recv(size)
                except BlockingIOError:
                    continue
                except OSError:  # reset: the keeper went away
                    return b""

    def _drain_stderr(self) -> None:
        with self._lock:
            if self._err is None:
                return
            try:
                data = os.read(self._err, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self._stderr += data
                del self._stderr[:-_STDERR_KEEP]
            else:
                self._err = None  # ended: stop watching it

    def sendall(self, data: bytes, timeout: float) -> None:
        """Send all of ``data``; TimeoutError when the keeper took nothing for
        ``timeout`` seconds; BrokenPipeError once the stream ended."""
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self._sock], [], timeout)
            if not writable:
                raise TimeoutError(f"the agent took no data for {timeout} s")
            try:
                view = view[self._sock.send(view) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise BrokenPipeError(f"the stream through the keeper broke: {exc!r}") from exc

    def close(self) -> None:
        """End both directions (the agent sees its stdin end)."""
        self.abort()

    def abort(self) -> None:
        """End both directions now (never blocks); the descriptors stay until :meth:`release`."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def release(self) -> None:
        """Close the socket and the stderr pipe (after the reader ended); idempotent."""
        with self._lock:
            if self._released:
                return
            self._released = True
            self._err = None
        self._sock.close()
        os.close(self._err_fd)

    def stderr_text(self) -> str:
        """The stderr tail read so far."""
        self._drain_stderr()
        with self._lock:
            return self._stderr.decode("utf-8", "replace")

    def final_stderr(self, timeout: float) -> str:
        """The stderr tail, read until it ends or ``timeout`` passes."""
        deadline = Deadline(timeout)
        while True:
            err = self._err
            if err is None or deadline.expired():
                break
            if select.select([err], [], [], deadline.remaining())[0]:
                self._drain_stderr()
        return self.stderr_text()


class UnixEnd:
    """A forward through the keeper as one end of a relay (socket-like, ``OSError`` on
    failure; see :class:`actorcluster.tunnels.relay.End`).

    Args:
        sock: the connected socket, the keeper splicing it to a ``direct-tcpip`` channel.
        pending: bytes of the channel that came with the keeper's answer.
    """

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self.sock = sock
        self._pending = pending
        self.sendall = sock.sendall

    def __repr__(self) -> str:
        return f"<UnixEnd fd={self.sock.fileno()}>"

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" once the host's side ended."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self.sock.recv(size)

    def shutdown_write(self) -> None:
        """Send EOF (the keeper passes it on to the channel)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Shut both ways (wakes a blocked recv), then close."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
