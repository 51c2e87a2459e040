"""The keeper's held SSH connections, lent channel by channel to library runtimes.

A runtime made with ``Runtime(host, keeper=True)`` (:mod:`actorcluster.ssh.keeper_connection`)
does not connect: it asks the keeper, which holds one raw :class:`SshConnection` per host
and connection settings (apart from the command line's runtime pool), built exactly as a
runtime builds its own (:func:`actorcluster.runtimes.options.build_options`, the keeper's
ssh_config, its host key checks). Its requests, one JSON line each:

- ``open`` ``{host, kwargs}``: connect, or reuse the held connection; answers
  ``{"ok": true, "conn": N, "cipher": ...}``, ``N`` naming that connection.
- ``alive`` ``{host, kwargs, conn}``: ``{"alive": bool}``, whether connection ``N`` is
  still the held one and up.
- ``channel`` ``{host, kwargs, conn, command}`` with one descriptor (the write end of a
  pipe for the channel's stderr): runs ``command`` on an exec channel, answers
  ``{"ok": true}``, then splices bytes both ways between the Unix socket and the
  channel until both sides ended (an EOF is passed on as one, so half-closes hold;
  each side waits for the other to take what it sent, so nothing is buffered without
  bound).
- ``forward`` ``{host, kwargs, conn, to, peer}``: the same over a ``direct-tcpip``
  channel to ``to`` (``ssh -L``).
- ``exec`` ``{host, kwargs, conn, command, timeout}``: runs a command; ``{"exit": N}``.

A failure answers ``{"error": message, "kind": class name, "pickled": ...}`` (the
exception pickled, base64: the caller raises the same typed error a direct connect would).
A connection found dead is dropped, and the next ``open`` connects anew; a request naming
a connection that is not held any more fails as a lost host (the runtime reconnects).
While a channel is open the keeper is not idle.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import pickle
import threading
import time
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.errors import HostUnreachableError, UsageError
from actorcluster.runtimes.options import build_options
from actorcluster.ssh import connect
from actorcluster.ssh.splice import exec_channel, splice

if TYPE_CHECKING:
    import socket

    from actorcluster.ssh import SshConnection

__all__ = ["CHANNEL_OPS", "HeldConnections"]

log = get_logger(__name__)

CHANNEL_OPS = frozenset({"open", "alive", "channel", "forward", "exec"})
"""The requests :meth:`HeldConnections.serve` answers."""
_Key = tuple[str, str]


def error_answer(exc: BaseException) -> dict[str, Any]:
    """The answer that makes the caller raise ``exc`` again."""
    answer: dict[str, Any] = {"error": str(exc), "kind": type(exc).__name__}
    with contextlib.suppress(Exception):  # an error that does not pickle: named only
        answer["pickled"] = base64.b64encode(pickle.dumps(exc)).decode()
    return answer


class HeldConnections:
    """One SSH connection per host and connection settings, and the channels open on them."""

    def __init__(self) -> None:
        self._held: dict[_Key, tuple[int, SshConnection]] = {}
        self._connecting: dict[_Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._serials = itertools.count(1)
        self._channels = 0
        self.last_used = time.monotonic()
        """When a channel last ended (the keeper's idle clock counts from then too)."""

    def hosts(self) -> list[str]:
        """The hosts of the held connections."""
        with self._lock:
            return sorted({key[0] for key in self._held})

    def busy(self) -> bool:
        """Whether a channel is open (a runtime's agent runs over it)."""
        with self._lock:
            return self._channels > 0

    def open_channels(self) -> int:
        """How many channels are open now."""
        with self._lock:
            return self._channels

    def serve(self, sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        """Answer ``request`` (one of :data:`CHANNEL_OPS`) on ``sock``, then close it
        (a channel's once it ended); ``fds`` are closed too."""
        stderr = fds[:1] if request.get("op") == "channel" else []
        for fd in fds[len(stderr) :]:
            os.close(fd)
        try:
            self._serve(sock, request, stderr)
        except Exception as exc:
            _send(sock, error_answer(exc))
        finally:
            for fd in stderr:  # not handed to a splice
                os.close(fd)
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self, sock: socket.socket, request: dict[str, Any], stderr: list[int]) -> None:
        op = request.get("op")
        host = str(request.get("host"))
        kwargs = request.get("kwargs")
        if not isinstance(kwargs, dict):
            raise UsageError("a keeper request needs 'kwargs', a JSON object")
        if op == "open":
            serial, connection = self._open(host, kwargs)
            _send(sock, {"ok": True, "conn": serial, "cipher": connection.cipher})
            return
        serial = int(request.get("conn", 0))
        if op == "alive":
            _send(sock, {"alive": self._alive(host, kwargs, serial)})
            return
        connection = self._get(host, kwargs, serial)
        if op == "exec":
            code = connection.run(str(request["command"]), float(request.get("timeout", 10)))
            _send(sock, {"exit": code})
        elif op == "channel":
            window = int(request.get("window_size", 2**21))
            self._splice(sock, exec_channel(connection, str(request["command"]), window), stderr)
        elif op == "forward":
            to, peer = request["to"], request["peer"]
            channel = connection.open_direct_tcpip(
                (str(to[0]), int(to[1])), (str(peer[0]), int(peer[1]))
            )
            self._splice(sock, channel, [])
        else:
            raise UsageError(f"unknown keeper request {op!r}")

    def _open(self, host: str, kwargs: dict[str, Any]) -> tuple[int, SshConnection]:
        key = (host, json.dumps(kwargs, sort_keys=True))
        with self._lock:
            connecting = self._connecting.setdefault(key, threading.Lock())
        with connecting:  # one connect per host and settings at a time
            with self._lock:
                held = self._held.get(key)
            if held is not None and held[1].is_active():
                return held
            self._drop(key, held)
            target = build_options(host, None, kwargs).target
            if target is None:
                raise UsageError(f"{host!r} is not a host the keeper connects to")
            connection = connect(target)
            serial = next(self._serials)
            with self._lock:
                self._held[key] = (serial, connection)
            log.info("keeper.connection.opened", host=host, conn=serial)
            return serial, connection

    def _drop(self, key: _Key, held: tuple[int, SshConnection] | None) -> None:
        if held is None:
            return
        with self._lock:
            if self._held.get(key) is held:
                del self._held[key]
        held[1].close()
        log.info("keeper.connection.dropped", host=key[0], conn=held[0])

    def _alive(self, host: str, kwargs: dict[str, Any], serial: int) -> bool:
        with self._lock:
            held = self._held.get((host, json.dumps(kwargs, sort_keys=True)))
        return held is not None and held[0] == serial and held[1].is_active()

    def _get(self, host: str, kwargs: dict[str, Any], serial: int) -> SshConnection:
        key = (host, json.dumps(kwargs, sort_keys=True))
        with self._lock:
            held = self._held.get(key)
        if held is None or held[0] != serial:
            raise HostUnreachableError(host, "the connection was lost (the keeper holds another)")
        if not held[1].is_active():
            self._drop(key, held)
            raise HostUnreachableError(host, "the connection was lost")
        return held[1]

    def _splice(self, sock: socket.socket, channel: Any, stderr: list[int]) -> None:
        """Relay between ``sock`` and ``channel`` until both directions ended; the
        channel's stderr to the descriptor in ``stderr``, if one (taken from it)."""
        with self._lock:
            self._channels += 1
        try:
            _send(sock, {"ok": True})
            splice(channel, sock, stderr.pop() if stderr else None)
        finally:
            with self._lock:
                self._channels -= 1
                self.last_used = time.monotonic()

    def close(self) -> None:
        """Close every held connection (their channels end with them)."""
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
        for _, connection in held:
            connection.close()


def _send(sock: socket.socket, answer: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(json.dumps(answer).encode() + b"\n")
