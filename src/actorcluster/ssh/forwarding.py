"""Port forwarding over an :class:`~actorcluster.ssh.SshConnection`: its paramiko side.

* :func:`open_channel_end`: a ``direct-tcpip`` channel, the host connecting to an
  address it can reach (what ``ssh -L`` opens per accepted connection);
* :class:`RemoteListener`: a ``tcpip-forward`` on the host (``ssh -R``): the host
  listens, and each connection it accepts arrives here as a channel;
* :class:`ChannelEnd`: either channel as one end of a relay, with the fast receive
  buffer and send path of :mod:`actorcluster.ssh.channel_io`.

paramiko keeps one handler for every forwarded connection of a transport, and its
``cancel_port_forward`` removes that handler for all of them. So each transport gets
one :class:`_Dispatcher` that routes incoming channels by the port they arrived on,
and a forward is cancelled with the bare ``cancel-tcpip-forward`` request.

Nothing here hands out a paramiko type: channels travel as :class:`ChannelEnd`, whose
methods raise ``OSError`` as a socket's do, and everything else raises
:mod:`actorcluster.errors` types.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING

import paramiko

from actorcluster._logging import get_logger
from actorcluster.errors import HostUnreachableError, RemoteError
from actorcluster.ssh.channel_io import install_fast_pipe, send_all
from actorcluster.ssh.keeper_connection import KeeperConnection, UnixEnd

if TYPE_CHECKING:
    from collections.abc import Callable

    from actorcluster.ssh.connect import SshConnection

__all__ = [
    "FORWARD_MAX_PACKET_SIZE",
    "FORWARD_WINDOW_SIZE",
    "ChannelEnd",
    "RemoteListener",
    "open_channel_end",
]

log = get_logger(__name__)

FORWARD_WINDOW_SIZE = 16 * 2**20
"""Window of forwarding channels, both the ones we open and the ones the host opens."""
FORWARD_MAX_PACKET_SIZE = 2**18
"""Largest packet the host may send us on them (OpenSSH's own packet limit)."""
_CHANNEL_ERRORS = (EOFError, paramiko.SSHException)


class ChannelEnd:
    """A forwarding channel as one end of a relay (socket-like, ``OSError`` on failure).

    Its receive buffer is a :class:`~actorcluster.ssh.channel_io.FastPipe`, and a send
    hands paramiko one packet's worth at a time (:func:`~actorcluster.ssh.channel_io.send_all`).
    """

    def __init__(self, channel: paramiko.Channel) -> None:
        """Wrap ``channel`` (from this module only: it is paramiko's)."""
        install_fast_pipe(channel)
        self._channel = channel

    def __repr__(self) -> str:
        return f"<ChannelEnd {self._channel.get_id()}>"

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" once the host sent EOF or the channel closed.

        Raises:
            ConnectionResetError: the connection under the channel failed.
        """
        try:
            return self._channel.recv(size)
        except _CHANNEL_ERRORS as exc:
            raise ConnectionResetError(f"the SSH channel failed: {exc!r}") from exc

    def sendall(self, data: bytes) -> None:
        """Send all of ``data``, one packet's worth of it per ``Channel.send``.

        Raises:
            BrokenPipeError: the channel was closed first.
            ConnectionResetError: the connection under the channel failed.
        """
        try:
            send_all(self._channel, data)
        except _CHANNEL_ERRORS as exc:
            raise ConnectionResetError(f"the SSH channel failed: {exc!r}") from exc

    def shutdown_write(self) -> None:
        """Send EOF on the channel."""
        with contextlib.suppress(OSError, *_CHANNEL_ERRORS):
            self._channel.shutdown_write()

    def close(self) -> None:
        """Close the channel (a blocked recv returns b"", a blocked send fails)."""
        with contextlib.suppress(OSError, *_CHANNEL_ERRORS):
            self._channel.close()


def open_channel_end(
    connection: SshConnection, dest: tuple[str, int], src: tuple[str, int]
) -> ChannelEnd | UnixEnd:
    """Open a ``direct-tcpip`` channel: the host connects to ``dest`` for us.

    Args:
        connection: the runtime's connection.
        dest: where the host connects to (``host``, ``port``), from its side.
        src: the address of the connection this channel carries, for the host's logs.

    Raises:
        HostUnreachableError: the connection is closed, or the host could not (or would
            not) connect to ``dest``; ``ConnectionRefusedHostError`` if refused.
    """
    if isinstance(connection, KeeperConnection):  # the keeper's connection: through it
        return connection.open_forward(dest, src)
    channel = connection.open_direct_tcpip(
        dest,
        src=src,
        window_size=FORWARD_WINDOW_SIZE,
        max_packet_size=FORWARD_MAX_PACKET_SIZE,
    )
    return ChannelEnd(channel)


class _Dispatcher:
    """The one ``forwarded-tcpip`` handler of a transport: routes channels by port."""

    def __init__(self) -> None:
        self._routes: dict[int, Callable[[ChannelEnd], None]] = {}
        self._lock = threading.Lock()

    def add(self, port: int, route: Callable[[ChannelEnd], None]) -> None:
        with self._lock:
            self._routes[port] = route

    def remove(self, port: int, route: Callable[[ChannelEnd], None]) -> None:
        with self._lock:
            if self._routes.get(port) == route:
                del self._routes[port]

    def __call__(
        self, channel: paramiko.Channel, origin: tuple[str, int], server: tuple[str, int]
    ) -> None:
        """Called on the transport's thread: hand the channel on, never block."""
        with self._lock:
            route = self._routes.get(server[1])
        if route is None:
            log.debug("ssh.forward.unrouted", port=server[1])
            channel.close()
            return
        route(ChannelEnd(channel))


_dispatchers: weakref.WeakKeyDictionary[paramiko.Transport, _Dispatcher] = (
    weakref.WeakKeyDictionary()
)
_dispatchers_lock = threading.Lock()


def _dispatcher(transport: paramiko.Transport) -> _Dispatcher:
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(transport)
        if dispatcher is None:
            dispatcher = _dispatchers[transport] = _Dispatcher()
            # Windows of channels the host opens to us: paramiko's 2 MiB and 32 KiB
            # would throttle a forwarded stream.
            transport.default_window_size = FORWARD_WINDOW_SIZE
            transport.default_max_packet_size = FORWARD_MAX_PACKET_SIZE
        return dispatcher


class RemoteListener:
    """A listener on the host (``tcpip-forward``), its connections handed to us.

    Args:
        connection: the runtime's connection.
        address: the address to listen on, on the host.
        port: the port to listen on, on the host.
        on_connection: called with each accepted connection's channel, on paramiko's
            thread: it must not block (start a thread) and owns the channel.
    """

    def __init__(
        self,
        connection: SshConnection,
        address: str,
        port: int,
        on_connection: Callable[[ChannelEnd], None],
    ) -> None:
        self.address = address
        self.port = port
        self._connection = connection
        self._on_connection = on_connection
        self._listening = False

    def __repr__(self) -> str:
        state = "listening" if self._listening else "closed"
        return f"<RemoteListener {self.address}:{self.port} {state}>"

    def open(self) -> None:
        """Ask the host to listen and forward.

        Raises:
            HostUnreachableError: the connection is closed.
            RemoteError: the host refused (the port is taken, or forwarding is off),
                with its reason.
        """
        what = f"listening on {self.address}:{self.port} (tcpip-forward)"
        self._connection.check_open(what)
        transport = self._connection.transport
        dispatcher = _dispatcher(transport)
        dispatcher.add(self.port, self._on_connection)
        try:
            transport.request_port_forward(self.address, self.port, handler=dispatcher)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            dispatcher.remove(self.port, self._on_connection)
            host = self._connection.target.alias
            if not self._connection.is_active():
                raise HostUnreachableError(host, f"{what}: the connection was lost") from exc
            reason = str(exc) or type(exc).__name__
            raise RemoteError(f"{host} refused {what}: {reason}") from exc
        self._listening = True

    def close(self) -> None:
        """Cancel the forward: the host stops listening (its connections stay ours)."""
        transport = self._connection.transport
        _dispatcher(transport).remove(self.port, self._on_connection)
        if self._listening and transport.is_active():
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                transport.global_request(
                    "cancel-tcpip-forward", (self.address, self.port), wait=True
                )
        self._listening = False
