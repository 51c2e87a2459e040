"""A TCP relay that adds round-trip time: every chunk waits half the RTT each way.

``tc netem`` is not available on these machines, so a bed host "far away"
(``SshBed(..., rtt_ms=20)``) is reached through this relay: it accepts on one address,
connects to the target for each connection, and passes each chunk it reads on
``rtt_ms / 2`` after it read it, in order, in both directions. What it holds is bounded
(:data:`HELD_LIMIT` bytes per direction): a receiver that does not read stops the relay
reading from the sender, as a real path's window does (back-pressure).

It runs in a process of its own (asyncio, one thread), so its CPU never competes with
the measured client for the GIL; it ends when its stdin closes (the process that
started it stopped it, or died). It counts **round trips** too: each chunk carries a
causal depth, one more than the deepest chunk the other way delivered before it was
read; ``depth`` over a stretch of request/response traffic, halved, is the round trips
it took (time plays no part), a new connection's handshake included (one round trip,
which the relay also waits: its own accept is immediate). ``STATS`` on stdin answers
with a JSON line of counters (``depths``: each connection's, ``depth``: their sum).

    relay = LatencyRelay(("127.0.0.2", 2222), rtt_ms=20).start()
    relay.address  # ("127.0.0.2", 40123): connect here instead
    relay.stats()  # {"connections": 1, "depth": 7, "bytes_up": ..., "bytes_down": ...}
    relay.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HELD_LIMIT", "LatencyRelay", "RelayError"]

HELD_LIMIT = 8 * 1024 * 1024
"""Bytes one direction of one connection holds in flight at most (8 MiB: 400 MB/s at
20 ms RTT, more than a loopback ssh moves)."""
CHUNK = 256 * 1024
START_TIMEOUT = 10.0


class RelayError(RuntimeError):
    """The relay did not start (the message says why)."""


class LatencyRelay:
    """A relay process to ``target`` adding ``rtt_ms`` of round-trip time.

    Args:
        target: (host, port) every accepted connection is relayed to.
        rtt_ms: round-trip time to add (half each way).
        listen: (host, port) to accept on; port 0 picks a free one.
        pid_file: where to write the relay's pid (for a watchdog), if given.
    """

    def __init__(
        self,
        target: tuple[str, int],
        rtt_ms: float,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        pid_file: Path | None = None,
    ) -> None:
        self.target = target
        self.rtt_ms = rtt_ms
        self.address = listen
        self._pid_file = pid_file
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> LatencyRelay:
        """Start the process; return once it listens (``address`` is then its own)."""
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            self.address[0],
            str(self.address[1]),
            self.target[0],
            str(self.target[1]),
            str(self.rtt_ms),
        ]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if self._pid_file is not None:
            self._pid_file.write_text(str(self._proc.pid))
        line = self._read_line()
        if not line.startswith("listening "):
            self.stop()
            raise RelayError(f"relay to {self.target} did not start: {line!r}")
        host, port = line.split()[1:3]
        self.address = (host, int(port))
        return self

    def _read_line(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        return box[0].strip() if box else ""

    @property
    def pid(self) -> int | None:
        """The relay process's pid, while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def stats(self) -> dict[str, Any]:
        """Counters: connections accepted, the deepest causal depth, bytes each way."""
        with self._lock:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write("STATS\n")
            self._proc.stdin.flush()
            answer: dict[str, Any] = json.loads(self._read_line())
            return answer

    def round_trips(self, before: dict[str, Any]) -> float:
        """Round trips since ``before`` (an earlier :meth:`stats`): the causal depth
        gained over every connection, halved (a new connection counts from 0)."""
        return (self.stats()["depth"] - before["depth"]) / 2

    def settled(self, tries: int = 200) -> dict[str, Any]:
        """:meth:`stats` once nothing has crossed for a few round trips (what an earlier
        action set going, a connection's close say, is over)."""
        pause = threading.Event()
        stats = self.stats()
        for _ in range(tries):
            pause.wait(max(0.01, 4 * self.rtt_ms / 1000))
            now = self.stats()
            if now == stats:
                return now
            stats = now
        raise RelayError(f"traffic through the relay to {self.target} never went quiet")

    def count(self, action: Callable[[], object]) -> float:
        """Round trips ``action`` took, with what it set going (measured between two
        quiet moments: nothing else may use the relay meanwhile)."""
        before = self.settled()
        action()
        return (self.settled()["depth"] - before["depth"]) / 2

    def stop(self) -> None:
        """End the process (its connections drop). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)


# --- the relay process ------------------------------------------------------------------


class _Counters:
    def __init__(self) -> None:
        self.connections = 0
        self.depths: list[int] = []
        self.up = 0
        self.down = 0


class _Link:
    """One accepted connection: the depth of the latest chunk delivered each way.

    It starts where TCP's handshake leaves it: SYN (depth 1) up, SYN-ACK (2) down, and
    the ACK (3) up, with which the client's first data may travel; the server accepts
    after the ACK, so what it sends first is depth 4. One round trip per two depths.
    """

    def __init__(self, counters: _Counters) -> None:
        self.delivered = {"up": 3, "down": 2}
        self.index = len(counters.depths)
        counters.depths.append(2)  # the handshake's round trip, SYN and SYN-ACK


async def _pump(
    source: asyncio.StreamReader,
    sink: asyncio.Future[asyncio.StreamWriter],
    delay: float,
    link: _Link,
    *,
    way: str,
    counters: _Counters,
) -> None:
    """Pass chunks from ``source`` to ``sink`` (once connected), each ``delay`` s after
    it was read, in order; at most :data:`HELD_LIMIT` bytes held."""
    loop = asyncio.get_running_loop()
    other = "down" if way == "up" else "up"
    queue: asyncio.Queue[tuple[float, bytes, int]] = asyncio.Queue()
    held = 0
    room = asyncio.Event()
    room.set()

    async def read() -> None:
        nonlocal held
        while True:
            await room.wait()
            data = await source.read(CHUNK)
            depth = link.delivered[other] + 1
            queue.put_nowait((loop.time() + delay, data, depth))
            if not data:
                return
            held += len(data)
            if held >= HELD_LIMIT:
                room.clear()

    async def write() -> None:
        nonlocal held
        writer = await sink
        while True:
            due, data, depth = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
            link.delivered[way] = max(link.delivered[way], depth)
            counters.depths[link.index] = max(counters.depths[link.index], depth)
            if way == "up":
                counters.up += len(data)
            else:
                counters.down += len(data)
            held -= len(data)
            if held < HELD_LIMIT:
                room.set()

    reader = _keep(asyncio.ensure_future(read()))
    try:
        await write()
    finally:
        reader.cancel()


_LIVE: set[asyncio.Future[Any]] = set()
"""Every task of the relay while it runs: asyncio keeps only weak references to tasks,
and a connection's tasks only reference each other, so without this the garbage
collector may destroy a connection in the middle of it."""


def _keep(task: asyncio.Future[Any]) -> asyncio.Future[Any]:
    _LIVE.add(task)
    task.add_done_callback(_LIVE.discard)
    return task


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _serve(listen: tuple[str, int], target: tuple[str, int], rtt_ms: float) -> None:
    delay = rtt_ms / 2000
    counters = _Counters()
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection: the handshake's round trip first (this side accepted at once:
        the client may send only after it), then the target accepts half a trip later."""
        counters.connections += 1
        this = asyncio.current_task()
        if this is not None:
            _keep(this)
        _nodelay(writer)
        link = _Link(counters)
        upstream: asyncio.Future[asyncio.StreamWriter] = loop.create_future()
        here: asyncio.Future[asyncio.StreamWriter] = loop.create_future()
        here.set_result(writer)
        await asyncio.sleep(2 * delay)
        pumps: list[asyncio.Future[None]] = [
            _keep(
                asyncio.ensure_future(
                    _pump(reader, upstream, delay, link, way="up", counters=counters)
                )
            )
        ]
        try:
            await asyncio.sleep(delay)
            up_reader, up_writer = await asyncio.open_connection(*target, limit=CHUNK)
        except OSError:
            pumps[0].cancel()
            writer.close()
            return
        _nodelay(up_writer)
        upstream.set_result(up_writer)
        down = _pump(up_reader, here, delay, link, way="down", counters=counters)
        pumps.append(_keep(asyncio.ensure_future(down)))
        try:
            await asyncio.gather(*pumps)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            for end in (writer, up_writer):
                end.close()

    server = await asyncio.start_server(handle, *listen, limit=CHUNK)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    while True:  # commands on stdin; EOF ends the relay
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            sys.stdout.flush()
            os._exit(0)  # every connection drops at once, as a relay switched off
        if line.strip() == "STATS":
            stats = {
                "connections": counters.connections,
                "depths": counters.depths,
                "depth": sum(counters.depths),
                "bytes_up": counters.up,
                "bytes_down": counters.down,
            }
            print(json.dumps(stats), flush=True)


def _main(argv: list[str]) -> None:
    listen = (argv[0], int(argv[1]))
    target = (argv[2], int(argv[3]))
    try:
        asyncio.run(_serve(listen, target, float(argv[4])))
    except OSError as error:
        print(f"error {error}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    _main(sys.argv[1:])
