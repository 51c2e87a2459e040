"""What a runtime knows about its host and does to its file system: :class:`HostInfo`.

Each is one request to the agent through the typed client: no shell is involved (except
for ``echo`` and filter commands, which are shell commands by definition), so paths
and names arrive literally.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actorcluster.errors import (
    NoPortsLeftError,
    PathCreationError,
    RemoteOperationError,
    UsageError,
)
from actorcluster.runtimes.ports import check_port

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = ["REQUEST_TIMEOUT", "HostInfo"]

REQUEST_TIMEOUT = 60.0
"""Seconds a host request may take."""


def _as_list(value: str | list[str] | tuple[str, ...] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise UsageError(f"{name} must be a string or a list of strings, not {value!r}")


class HostInfo:
    """A runtime's host: its facts (read once, cached), its folders, its ports.

    Args:
        handle: the runtime's handle.
    """

    def __init__(self, handle: RuntimeHandle) -> None:
        self._handle = handle
        self._facts: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # --- facts ----------------------------------------------------------------------

    def facts(self) -> dict[str, Any]:
        """cpu_cores, memory (bytes), os, python_version, gpus, hostname (a copy)."""
        with self._lock:
            if self._facts is None:
                client = self._handle.client()
                self._facts = client.facts().result(REQUEST_TIMEOUT)
            return dict(self._facts)

    def gpus(self) -> list[dict[str, Any]]:
        """One entry per GPU (from nvidia-smi); empty without NVIDIA GPUs."""
        return list(self.facts().get("gpus") or [])

    def memory_in_mb(self) -> int:
        """Total memory in megabytes."""
        return int(self.facts()["memory"]) // 1024 // 1024

    def print_info(self, class_name: str) -> None:
        """Print the facts as a table."""
        info = self.facts()
        print(f"Information of `{class_name}` {self._handle.host}:")
        width = max(len(key) for key in info)
        for key, value in info.items():
            if key == "memory":
                shown = f"{self.memory_in_mb()} MB"
            elif key == "gpus":
                shown = "; ".join(str(gpu.get("name", gpu)) for gpu in value) if value else "none"
            else:
                shown = str(value)
            print(f"{key:<{width}}  {shown}")

    def check_filter(
        self,
        env: Mapping[str, str],
        *,
        gpu_required: bool = False,
        min_memory: int | None = None,
        min_cpu_cores: int | None = None,
        installed_executables: str | list[str] | None = None,
        filter_commands: str | list[str] | None = None,
    ) -> bool:
        """Whether the host meets every given criterion (see ``Runtime.check_filter``)."""
        executables = _as_list(installed_executables, "installed_executables")
        commands = _as_list(filter_commands, "filter_commands")
        if gpu_required and not self.gpus():
            return False
        if min_memory is not None and self.memory_in_mb() < min_memory:
            return False
        if min_cpu_cores is not None and int(self.facts()["cpu_cores"]) < min_cpu_cores:
            return False
        if executables:
            found = self._handle.client().which(executables, env).result(REQUEST_TIMEOUT)
            if not all(found.get(name) for name in executables):
                return False
        return all(self.stdout_of(command, env).strip().lower() == "true" for command in commands)

    # --- commands -------------------------------------------------------------------

    def stdout_of(self, command: str, env: Mapping[str, str]) -> str:
        """Run ``command`` in the working directory; its stdout (exit code aside)."""
        output: list[bytes] = []

        def collect(fd: int, data: bytes) -> None:
            if fd == 1:
                output.append(data)

        client = self._handle.client()
        call = client.run(command, env=env, cwd=self._handle.working_dir, on_output=collect)
        call.result(REQUEST_TIMEOUT)
        return b"".join(output).decode("utf-8", "replace")

    # --- folders --------------------------------------------------------------------

    def create_dir(self, path: str) -> str:
        """Create a folder with its parents; its absolute path.

        Raises:
            PathCreationError: it could not be created (names the path and why).
        """
        if not isinstance(path, str) or not path.strip():
            raise PathCreationError(str(path), self._handle.host, "empty path")
        try:
            return self._handle.client().mkdir(path).result(REQUEST_TIMEOUT)
        except RemoteOperationError as exc:
            raise PathCreationError(path, self._handle.host, exc.reason) from None

    def delete_dir(self, path: str) -> bool:
        """Delete a folder recursively; False if anything could not be removed."""
        if not isinstance(path, str) or not path.strip():
            raise UsageError("path must be a non-empty string")
        try:
            return self._handle.client().rmtree(path).result(REQUEST_TIMEOUT)
        except RemoteOperationError:
            return False

    def create_tempdir(self) -> str:
        """A new private folder on the host (not removed automatically)."""
        return self._handle.client().mkdtemp(temporary=False).result(REQUEST_TIMEOUT)

    # --- ports ----------------------------------------------------------------------

    def ports_free(self, ports: list[int]) -> list[bool]:
        """Whether each port can be bound on the host (one request for all)."""
        return self._handle.client().ports_free(ports).result(REQUEST_TIMEOUT)

    def has_free_port(self, port: int) -> bool:
        """Whether ``port`` is free on the host."""
        return self.ports_free([check_port(port)])[0]

    def get_free_port(self, ports: list[int]) -> int:
        """The first free port of ``ports`` on the host.

        Raises:
            NoPortsLeftError: none is free, or the list is empty.
        """
        checked = [check_port(port) for port in ports]
        if checked:
            for port, free in zip(checked, self.ports_free(checked), strict=True):
                if free:
                    return port
        raise NoPortsLeftError(checked, self._handle.host)
