"""Helpers of the tunnel tests: an echo service, free ports, checked round trips, each
where the test says: on this machine, or ``on=`` a bed host.

On the loopback bed the hosts share this machine's loopback, so the two ends of a tunnel
always get different ports (a listener and the service behind it on one port would
collide), and "on a host" is here. On an isolated bed (``ACTORCLUSTER_TEST_ISOLATED=1``)
a host's 127.0.0.1 is its own: what runs ``on=`` it is this file run as a program inside
its namespace (``host.run``), as a real fleet's service or client would run there.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from sshbed import SshHost

__all__ = [
    "EchoServer",
    "HeldConnection",
    "echo_round_trip",
    "echo_round_trips",
    "free_ports",
    "listening",
    "port_free",
    "ports_free",
    "ports_listening",
    "read_all",
    "ssh_pids_forwarding",
]


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


def _elsewhere(on: SshHost | None) -> SshHost | None:
    """The host to run on, when it is not this machine (an isolated bed's host)."""
    return on if on is not None and on.net is not None else None


def _on_host(host: SshHost, *argv: object, timeout: float = 30.0) -> str:
    """Run this file as a program on ``host`` with ``argv``; its output (it must succeed)."""
    proc = host.run([sys.executable, __file__, *map(str, argv)], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, f"{argv} on {host.name}: {err.decode(errors='replace')}"
    return out.decode()


def listening(port: int, on: SshHost | None = None) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (here, or ``on`` a host)."""
    if host := _elsewhere(on):
        return _on_host(host, "listening", port).strip() == "True"
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
        return True
    return False


def port_free(port: int, on: SshHost | None = None) -> bool:
    """Whether a listener could bind 127.0.0.1:port now (here, or ``on`` a host)."""
    if host := _elsewhere(on):
        return _on_host(host, "free", port).strip() == "True"
    from actorcluster.tunnels import port_is_free

    return port_is_free("127.0.0.1", port)


class EchoServer:
    """A TCP echo service on 127.0.0.1:port that can go away and come back: here, or
    ``on`` a host (a process there; ``connections`` counts the same)."""

    def __init__(self, port: int, on: SshHost | None = None) -> None:
        self.port = port
        self.connections = 0
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._host = _elsewhere(on)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> EchoServer:
        """Listen (again) and echo every connection until its client closes."""
        if self._host is not None:
            return self._start_there(self._host)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _start_there(self, host: SshHost) -> EchoServer:
        argv = [sys.executable, __file__, "serve", str(self.port)]
        proc = self._proc = host.run(argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n", f"no echo service on {host.name}"
        threading.Thread(target=self._count, args=(proc.stdout,), daemon=True).start()
        return self

    def _count(self, lines: IO[bytes]) -> None:
        with lines:
            for _ in lines:  # a line per connection accepted
                with self._lock:
                    self.connections += 1

    def stop(self) -> None:
        """Stop listening and drop every connection (clients see them closed)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # its sockets close with it
            proc.wait(10)
            return  # the counting thread closes the pipe at its end
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


def echo_round_trips(
    ports: list[int], size: int = 256 * 1024, timeout: float = 60.0, on: SshHost | None = None
) -> None:
    """:func:`echo_round_trip` through every port at once (here, or ``on`` a host: one
    program there for them all)."""
    if host := _elsewhere(on):
        joined = ",".join(map(str, ports))
        _on_host(host, "round-trips", joined, size, timeout, timeout=timeout + 20)
        return
    with concurrent.futures.ThreadPoolExecutor(max(1, len(ports))) as pool:
        list(pool.map(lambda port: echo_round_trip(port, size, timeout), ports, timeout=timeout))


def ports_free(ports: list[int], on: SshHost | None = None) -> list[bool]:
    """:func:`port_free` for each port (``on`` a host: one program there for them all)."""
    if host := _elsewhere(on):
        out = _on_host(host, "free", ",".join(map(str, ports)))
        return [line == "True" for line in out.split()]
    return [port_free(port) for port in ports]


def ports_listening(ports: list[int], on: SshHost | None = None) -> list[bool]:
    """:func:`listening` for each port (``on`` a host: one program there for them all)."""
    if host := _elsewhere(on):
        out = _on_host(host, "listening", ",".join(map(str, ports)))
        return [line == "True" for line in out.split()]
    return [listening(port) for port in ports]


def echo_round_trip(
    port: int, size: int = 256 * 1024, timeout: float = 10.0, on: SshHost | None = None
) -> None:
    """Send ``size`` random bytes to 127.0.0.1:port, half-close, and check the echo
    (from here, or ``on`` a host).

    Raises:
        AssertionError: the bytes that came back differ (checksums), or none came.
        OSError: the connection failed (here).
    """
    if host := _elsewhere(on):
        _on_host(host, "round-trip", port, size, timeout, timeout=timeout + 20)
        return
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


def read_all(port: int, on: SshHost | None = None, timeout: float = 10.0) -> bytes:
    """Connect to 127.0.0.1:port (from here, or ``on`` a host) and read until the other
    end closes; what came."""
    if host := _elsewhere(on):
        return bytes.fromhex(_on_host(host, "read", port, timeout, timeout=timeout + 20))
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        while data := sock.recv(65536):
            received += data
    return received


class HeldConnection:
    """A connection to 127.0.0.1:port that has echoed a ping, held open (here, or ``on``
    a host) until :meth:`closed_by_peer` asks whether the other end closed it."""

    def __init__(self, port: int, on: SshHost | None = None) -> None:
        self._host = _elsewhere(on)
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        if self._host is None:
            self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            self._sock.sendall(b"ping")
            assert self._sock.recv(4) == b"ping"
            return
        argv = [sys.executable, __file__, "hold", str(port)]
        self._proc = self._host.run(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline() == b"ready\n", "no ping echoed on the host"

    def closed_by_peer(self, timeout: float = 10.0) -> bool:
        """Whether the other end closes the connection within ``timeout`` (an end of
        stream, or a reset), after which this end is closed too."""
        if self._sock is not None:
            with self._sock:
                self._sock.settimeout(timeout)
                try:
                    return self._sock.recv(4) == b""
                except ConnectionResetError:
                    return True
                except TimeoutError:
                    return False
        assert self._proc is not None
        out, _ = self._proc.communicate(f"{timeout}\n".encode(), timeout=timeout + 20)
        return out.strip() == b"closed"


# --- the program run on a host (``python3 test_tunnels_support.py WHAT PORT ...``) ---


def _serve(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print("ready", flush=True)

    def echo(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            while data := client.recv(65536):
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)

    while True:
        client, _ = listener.accept()
        print("accepted", flush=True)
        threading.Thread(target=echo, args=(client,), daemon=True).start()


def _hold(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        print("ready", flush=True)
        sock.settimeout(float(sys.stdin.readline()))
        try:
            print("closed" if sock.recv(4) == b"" else "data")
        except ConnectionResetError:
            print("closed")
        except TimeoutError:
            print("open")


def _main(what: str, port: str, *rest: str) -> None:
    if what == "serve":
        _serve(int(port))
    elif what == "hold":
        _hold(int(port))
    elif what == "round-trip":
        echo_round_trip(int(port), int(rest[0]), float(rest[1]))
    elif what == "read":
        print(read_all(int(port), timeout=float(rest[0])).hex())
    elif what == "round-trips":
        echo_round_trips([int(p) for p in port.split(",")], int(rest[0]), float(rest[1]))
    elif what == "listening":
        for each in port.split(","):
            print(listening(int(each)))
    elif what == "free":
        for each in port.split(","):
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as port_is_free
                try:
                    sock.bind(("127.0.0.1", int(each)))
                except OSError:
                    print(False)
                else:
                    print(True)


if __name__ == "__main__":
    _main(*sys.argv[1:])
