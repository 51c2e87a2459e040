"""Host facts, directories, ports and filters: that part of
:class:`~actorcluster.runtimes.runtime.Runtime`. Each is one request to the agent: no shell is
involved, so paths and names arrive literally."""

from __future__ import annotations

import shlex
import threading
from typing import TYPE_CHECKING, Any

from actorcluster.errors import (
    ActorClusterError,
    NoPortsLeftError,
    PathCreationError,
    UsageError,
)
from actorcluster.remote.agent.frames import Kind
from actorcluster.runtimes.ports import check_port

if TYPE_CHECKING:
    from actorcluster.actors.context import RuntimeContext
    from actorcluster.remote.agent.frames import Frame

__all__ = ["RuntimeHostMixin"]

_REQUEST_TIMEOUT = 60.0


def _as_list(value: str | list[str] | tuple[str, ...] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise UsageError(f"{name} must be a string or a list of strings, not {value!r}")


class RuntimeHostMixin:
    """What a runtime knows about its host and does to its file system."""

    _host: str
    _context: RuntimeContext
    _env: dict[str, str]

    def _init_host_facts(self) -> None:
        self._facts: dict[str, Any] | None = None
        self._facts_lock = threading.Lock()

    def _request(self, kind: Kind, payload: dict[str, Any]) -> Frame:
        return self._context.agent().call(kind, payload, timeout=_REQUEST_TIMEOUT)

    def _fs(self, op: str, **payload: Any) -> Any:
        frame = self._request(Kind.FS, {"op": op, **payload})
        if frame.kind != Kind.RESULT:
            raise _AgentRefusedError(frame.payload)
        return frame.payload["value"]

    # --- facts ----------------------------------------------------------------------

    @property
    def info(self) -> dict[str, Any]:
        """Facts about the host, read once and cached: cpu_cores, memory, os,
        python_version, gpus, hostname."""
        with self._facts_lock:
            if self._facts is None:
                frame = self._request(Kind.FACTS, {})
                if frame.kind != Kind.RESULT:
                    raise ActorClusterError(
                        f"could not read the facts of {self._host}: {frame.payload}"
                    )
                self._facts = dict(frame.payload["value"])
            return dict(self._facts)

    @property
    def os(self) -> str:
        """The operating system."""
        return str(self.info["os"])

    @property
    def cpu_cores(self) -> int:
        """CPU cores available: the container's CPU quota when one is set."""
        return int(self.info["cpu_cores"])

    @property
    def memory(self) -> int:
        """Total memory in bytes: the container's memory limit when one is set."""
        return int(self.info["memory"])

    @property
    def memory_in_mb(self) -> int:
        """Total memory in megabytes."""
        return self.memory // 1024 // 1024

    @property
    def python_version(self) -> str:
        """The agent's Python version on the host."""
        return str(self.info["python_version"])

    @property
    def gpus(self) -> list[dict[str, Any]]:
        """One entry per GPU (from nvidia-smi); empty without NVIDIA GPUs."""
        return list(self.info.get("gpus") or [])

    @property
    def gpu_count(self) -> int:
        """The number of GPUs."""
        return len(self.gpus)

    def print_info(self) -> None:
        """Print the host facts as a table."""
        info = self.info
        print(f"Information of `{type(self).__name__}` {self._host}:")
        width = max(len(key) for key in info)
        for key, value in info.items():
            if key == "memory":
                shown = f"{self.memory_in_mb} MB"
            elif key == "gpus":
                shown = "; ".join(str(gpu.get("name", gpu)) for gpu in value) if value else "none"
            else:
                shown = str(value)
            print(f"{key:<{width}}  {shown}")

    def check_filter(
        self,
        gpu_required: bool = False,
        min_memory: int | None = None,
        min_cpu_cores: int | None = None,
        installed_executables: str | list[str] | None = None,
        filter_commands: str | list[str] | None = None,
    ) -> bool:
        """Whether the host meets every given criterion.

        Args:
            gpu_required: at least one GPU.
            min_memory: at least this many MB of memory.
            min_cpu_cores: at least this many CPU cores.
            installed_executables: each must be found on the host's PATH.
            filter_commands: each shell command must print ``true`` (surrounding
                whitespace and case ignored).
        """
        executables = _as_list(installed_executables, "installed_executables")
        commands = _as_list(filter_commands, "filter_commands")
        if gpu_required and not self.gpus:
            return False
        if min_memory is not None and self.memory_in_mb < min_memory:
            return False
        if min_cpu_cores is not None and self.cpu_cores < min_cpu_cores:
            return False
        if executables:
            found = self._fs("which", names=executables, env=self._env)
            if not all(found.get(name) for name in executables):
                return False
        return all(self._command_prints_true(command) for command in commands)

    def _command_prints_true(self, command: str) -> bool:
        return self._stdout_of(command).strip().lower() == "true"

    def _stdout_of(self, command: str) -> str:
        """Run ``command`` in the working directory; return its stdout (exit code aside)."""
        output: list[bytes] = []

        def collect(frame: Frame) -> None:
            if frame.payload.get("fd") == 1:
                output.append(frame.payload.get("data", b""))

        payload = {"cmd": command, "env": self._env, "cwd": self._context.working_dir}
        agent = self._context.agent()
        agent.wait(agent.submit(Kind.RUN, payload, collect), _REQUEST_TIMEOUT, command)
        return b"".join(output).decode("utf-8", "replace")

    # --- directories ----------------------------------------------------------------

    def create_dir(self, path: str) -> None:
        """Create a directory with all its parents (the path is literal).

        Raises:
            PathCreationError: it could not be created (names the path and why).
        """
        if not isinstance(path, str) or not path.strip():
            raise PathCreationError(str(path), self._host, "empty path")
        try:
            self._fs("mkdir", path=path)
        except _AgentRefusedError as exc:
            raise PathCreationError(path, self._host, str(exc)) from None

    def delete_dir(self, path: str) -> bool:
        """Delete a directory recursively; False if anything could not be removed."""
        if not isinstance(path, str) or not path.strip():
            raise UsageError("path must be a non-empty string")
        try:
            return bool(self._fs("rmtree", path=path))
        except _AgentRefusedError:
            return False

    def create_tempdir(self) -> str:
        """Create a temporary directory on the host and return its path (not removed
        automatically)."""
        return str(self._fs("mkdtemp", prefix="actorcluster-", temporary=False))

    def echo(self, msg: str) -> str:
        """Echo ``msg`` through the host's shell and return what it printed."""
        return self._stdout_of(f"echo {shlex.quote(str(msg))}")

    # --- ports and validity ---------------------------------------------------------

    def _ports_free(self, ports: list[int]) -> list[bool]:
        frame = self._request(Kind.PORTS, {"ports": ports, "host": ""})
        if frame.kind != Kind.RESULT:
            raise ActorClusterError(f"could not check ports on {self._host}: {frame.payload}")
        return [bool(free) for free in frame.payload["value"]]

    def has_free_port(self, port: int) -> bool:
        """Whether ``port`` is free on the host.

        Raises:
            ValueError: the port is not in 1..65535.
        """
        return self._ports_free([check_port(port)])[0]

    def get_free_port(self, ports: list[int]) -> int:
        """The first free port of ``ports`` on the host (all checked in one request).

        Raises:
            NoPortsLeftError: none is free, or the list is empty.
        """
        checked = [check_port(port) for port in ports]
        if checked:
            for port, free in zip(checked, self._ports_free(checked), strict=False):
                if free:
                    return port
        raise NoPortsLeftError(checked, self._host)

    def is_valid_runtime(self) -> bool:
        """Whether the host answers and runs a suitable Python (the agent is up)."""
        try:
            return self._request(Kind.PING, {}).kind == Kind.PONG
        except ActorClusterError:
            return False


class _AgentRefusedError(Exception):
    """An FS request answered ERROR; str() is the agent's type and message."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('type', 'error')}: {payload.get('message', payload)}")
