"""Helpers of the tunnel tests: an echo service, free ports, checked round trips.

The bed's hosts share this machine's loopback, so the two ends of a tunnel always get
different ports (a listener and the service behind it on one port would collide).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from pathlib import Path

__all__ = ["EchoServer", "echo_round_trip", "free_ports", "listening", "ssh_pids_forwarding"]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
        return True
    return False


class EchoServer:
    """A TCP echo service on 127.0.0.1:port that can go away and come back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> EchoServer:
        """Listen (again) and echo every connection until its client closes."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection (clients see them closed)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            clients, self._clients = list(self._clients), set()
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._clients.add(client)
                self.connections += 1
            threading.Thread(target=self._echo, args=(client,), daemon=True).start()

    def _echo(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)
        with self._lock:
            self._clients.discard(client)
        client.close()


def echo_round_trip(port: int, size: int = 256 * 1024, timeout: float = 10.0) -> None:
    """Send ``size`` random bytes to 127.0.0.1:port, half-close, and check the echo.

    Raises:
        AssertionError: the bytes that came back differ (checksums), or none came.
    """
    payload = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout) as sock:
        sender = threading.Thread(target=_send_and_close, args=(sock, payload), daemon=True)
        sender.start()
        received = hashlib.sha256()
        total = 0
        while data := sock.recv(65536):
            received.update(data)
            total += len(data)
        sender.join(timeout)
    assert total == size, f"echoed {total} of {size} bytes through port {port}"
    assert received.hexdigest() == hashlib.sha256(payload).hexdigest(), "checksum mismatch"


def _send_and_close(sock: socket.socket, payload: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)


def ssh_pids_forwarding(port: int) -> list[int]:
    """The ``ssh`` processes here whose command line forwards ``port`` (``...:port:...``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"ssh") and any(f":{port}:".encode() in arg for arg in argv):
                pids.append(int(proc.name))
    return pids
