"""A tiny client for testing the agent: runs it as a local subprocess over pipes.

Not the library's client (``actorcluster.remote.client``): this one is deliberately
minimal, so agent tests do not depend on it. A reader thread sorts reply frames by
request id into queues; :meth:`AgentProcess.request` sends one request and collects its
frames up to the final one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import actorcluster
from actorcluster.remote import bootstrap
from actorcluster.remote.agent import frames
from actorcluster.remote.agent.frames import Frame, Kind

if TYPE_CHECKING:
    import io
    from collections.abc import Callable

FINAL = frozenset({Kind.EXIT, Kind.RESULT, Kind.RAISED, Kind.ERROR, Kind.PONG})
"""Reply kinds that end a request."""

SRC = str(Path(actorcluster.__file__).resolve().parents[1])
"""The folder the tests import actorcluster from; the agent imports the same code."""

AGENT_PYTHON = os.environ.get("ACTORCLUSTER_TEST_AGENT_PYTHON")
"""Another interpreter to run the agent under (``ACTORCLUSTER_TEST_AGENT_PYTHON``, say
a Python 3.8), started as on a host: the bootstrap's two stages, the sources sent when
it asks for them. None: this interpreter, ``python -m actorcluster.remote.agent``."""

COMMAND = (
    [AGENT_PYTHON, "-c", bootstrap.first_stage()]
    if AGENT_PYTHON
    else [sys.executable, "-m", "actorcluster.remote.agent"]
)
"""How the tests start the agent by default."""


def agent_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for :data:`COMMAND`: ours, with :data:`SRC` first on PYTHONPATH."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    return env


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` (for effects in another process, which send no event)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class AgentProcess:
    """The agent running as ``python -m actorcluster.remote.agent``.

    Args:
        cwd: the agent's starting directory.
        env: extra environment for the agent.
        timeout: seconds to wait for the ready marker and HELLO.
        command: how to start it, by default :data:`COMMAND` with :data:`SRC` first on
            ``PYTHONPATH``.
    """

    def __init__(
        self,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 10.0,
        command: list[str] | None = None,
    ) -> None:
        full_env = {**os.environ, **(env or {})} if command else agent_env(env)
        self.proc = subprocess.Popen(
            command or COMMAND,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=full_env,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._stdin = self.proc.stdin
        self._stdout = cast("io.BufferedReader", self.proc.stdout)
        self._staged = AGENT_PYTHON is not None and command is None
        if self._staged:
            self._stdin.write(bootstrap.stage_two().wire_bytes())
            self._stdin.flush()
        self.stderr = bytearray()
        self.noise = self._read_marker()
        self._ids = itertools.count(1)
        self._queues: dict[int, queue.Queue[Frame | None]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.hello_queue = self._queue(0)
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        hello = self.hello_queue.get(timeout=timeout)
        assert hello is not None, bytes(self.stderr)
        self.hello = hello

    def _read_marker(self) -> bytes:
        """Read up to and including the ready marker; return what came before it."""
        seen = b""
        while frames.READY_MARKER not in seen:
            byte = self._stdout.read(1)
            if not byte:
                assert self.proc.stderr is not None
                stderr = self.proc.stderr.read().decode(errors="replace")
                raise RuntimeError(f"agent ended before its ready marker: {seen!r}\n{stderr}")
            seen += byte
            if self._staged and seen.endswith(bootstrap.SOURCES_REQUEST):
                seen = seen[: -len(bootstrap.SOURCES_REQUEST)]
                self._stdin.write(bootstrap.source_stage())
                self._stdin.flush()
        return seen[: -len(frames.READY_MARKER)]

    def _queue(self, request_id: int) -> queue.Queue[Frame | None]:
        with self._lock:
            return self._queues.setdefault(request_id, queue.Queue())

    def _read_loop(self) -> None:
        reader = frames.FrameReader(self._stdout.read1)
        while True:
            try:
                frame = reader.read_frame()
            except (frames.FrameError, OSError, ValueError):
                frame = None
            if frame is None:
                with self._lock:
                    for waiting in self._queues.values():
                        waiting.put(None)
                return
            self._queue(frame.request_id).put(frame)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    # -- sending ----------------------------------------------------------------------

    def next_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    def send(self, kind: int, request_id: int, payload: dict[str, Any]) -> None:
        """Write one frame to the agent."""
        data = frames.encode_frame(kind, request_id, payload)
        with self._send_lock:
            self._stdin.write(data)
            self._stdin.flush()

    def start(self, kind: int, payload: dict[str, Any]) -> int:
        """Send a request; return its id (collect replies with :meth:`replies`)."""
        request_id = self.next_id()
        self._queue(request_id)
        self.send(kind, request_id, payload)
        return request_id

    def next_frame(self, request_id: int, timeout: float = 10.0) -> Frame:
        """The next frame for ``request_id``."""
        frame = self._queue(request_id).get(timeout=timeout)
        if frame is None:
            raise EOFError(f"agent stream ended; stderr: {bytes(self.stderr)!r}")
        return frame

    def queued(self, request_id: int) -> list[Frame | None]:
        """Frames already received for ``request_id`` and not yet taken (no waiting)."""
        waiting = self._queue(request_id)
        found = []
        while not waiting.empty():
            found.append(waiting.get_nowait())
        return found

    def replies(self, request_id: int, timeout: float = 10.0) -> tuple[list[Frame], Frame]:
        """Frames of ``request_id`` up to the final one: (intermediate frames, final)."""
        deadline = time.monotonic() + timeout
        collected: list[Frame] = []
        while True:
            frame = self.next_frame(request_id, max(0.0, deadline - time.monotonic()))
            if frame.kind in FINAL:
                return collected, frame
            collected.append(frame)

    def request(
        self, kind: int, payload: dict[str, Any], timeout: float = 10.0
    ) -> tuple[list[Frame], Frame]:
        """Send a request and wait for all its frames."""
        return self.replies(self.start(kind, payload), timeout)

    def result(self, kind: int, payload: dict[str, Any], timeout: float = 10.0) -> Any:
        """Send a request that answers RESULT; return its value."""
        _, final = self.request(kind, payload, timeout)
        assert final.kind == Kind.RESULT, final
        return final.payload["value"]

    def fs(self, op: str, **fields: Any) -> Frame:
        """Send an FS request; return its final frame."""
        return self.request(Kind.FS, {"op": op, **fields})[1]

    def run(self, cmd: str, **fields: Any) -> tuple[bytes, bytes, Frame]:
        """Run a command: (stdout, stderr, final frame)."""
        output, final = self.request(Kind.RUN, {"cmd": cmd, "env": {}, "cwd": None, **fields})
        out = b"".join(f.payload["data"] for f in output if f.payload["fd"] == 1)
        err = b"".join(f.payload["data"] for f in output if f.payload["fd"] == 2)
        return out, err, final

    def put(
        self, path: str, kind: str, data: bytes, chunk: int = 256 * 1024, mode: int | None = None
    ) -> Frame:
        """Upload ``data`` to ``path`` in chunks; return the final frame."""
        request_id = self.start(Kind.PUT, {"path": path, "kind": kind, "mode": mode})
        for offset in range(0, len(data), chunk):
            self.send(Kind.PUT_CHUNK, request_id, {"data": data[offset : offset + chunk]})
        self.send(Kind.PUT_END, request_id, {})
        return self.replies(request_id)[1]

    # -- ending -----------------------------------------------------------------------

    def close_stdin(self) -> None:
        """Close the agent's stdin (what a vanished client looks like)."""
        with contextlib.suppress(OSError):
            self._stdin.close()

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the agent to exit; return its status."""
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Close stdin, wait for the exit (kill after a timeout); again is harmless."""
        self.close_stdin()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def measure_costs(agent: AgentProcess, rounds: int = 200) -> dict[str, float]:
    """Median round trip in milliseconds of PING, RUN ``true`` and CALL ``lambda: 1``."""
    import statistics

    import cloudpickle

    payload = cloudpickle.dumps((lambda: 1, {}))
    requests = {
        "ping": (Kind.PING, {}),
        "run_true": (Kind.RUN, {"cmd": "true", "env": {}, "cwd": None}),
        "call_lambda": (Kind.CALL, {"payload": payload, "env": {}, "cwd": None}),
    }
    costs = {}
    for name, (kind, body) in requests.items():
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            agent.request(kind, body)
            samples.append((time.perf_counter() - started) * 1000)
        costs[name] = statistics.median(samples)
    return costs


if __name__ == "__main__":
    process = AgentProcess()
    try:
        for cost_name, millis in measure_costs(process, 500).items():
            print(f"{cost_name:12s} {millis:.3f} ms (median)")
    finally:
        process.close()
