"""What a runtime knows about its host and does to its file system: :class:`HostInfo`.

Each is one request to the agent through the typed client: no shell is involved (except
for ``echo`` and filter commands, which are shell commands by definition). Paths get the
two expansions lazycluster's shell gave them, ``~`` and ``$VAR`` (see
:mod:`actorcluster.runtimes.paths`); everything else in them is literal.
"""

from __future__ import annotations

import json
import pickle
import posixpath
import shlex
import threading
from typing import TYPE_CHECKING, Any

from actorcluster._limits import REQUEST_TIMEOUT
from actorcluster.errors import (
    NoPortsLeftError,
    PathCreationError,
    RemoteOperationError,
    UsageError,
)
from actorcluster.remote import CallReturned, functions_run_on
from actorcluster.runtimes.paths import (
    expand_path,
    host_environment_reader,
    needs_expansion,
    tilde_user,
)
from actorcluster.runtimes.pickling import dumps_call
from actorcluster.runtimes.ports import check_port

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actorcluster.remote import AgentClient
    from actorcluster.runtimes.handle import RuntimeHandle

__all__ = ["REQUEST_TIMEOUT", "HostInfo"]


def _as_list(value: str | list[str] | tuple[str, ...] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise UsageError(f"{name} must be a string or a list of strings, not {value!r}")


_READ_ENV = (
    "import json, os, pwd, sys\n"
    "homes = {}\n"
    "for user in sys.argv[1:]:\n"
    "    try:\n"
    "        entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())\n"
    "    except KeyError:\n"
    "        continue\n"
    "    homes[user] = entry.pw_dir\n"
    "print(json.dumps([dict(os.environ), homes]))\n"
)
"""What :func:`~actorcluster.runtimes.paths.host_environment_reader` reads, as a
program for any Python on the host: JSON ``[environment, {user: home}]``."""


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

    def facts(self, timeout: float | None = None) -> dict[str, Any]:
        """lazycluster's info (a copy): host, os, cpu_cores, memory (bytes),
        python_version, gpus (their names), workspace_version; and hostname,
        architecture, gpu_details (see :meth:`gpu_details`). Read once, then cached;
        ``timeout`` bounds the wait for a reconnect and for the answer (None: the
        runtime's ``reconnect_wait`` and :data:`REQUEST_TIMEOUT`)."""
        with self._lock:
            if self._facts is None:
                client = self._handle.client(timeout)
                facts = client.facts().result(REQUEST_TIMEOUT if timeout is None else timeout)
                details = [dict(gpu) for gpu in facts.get("gpus") or []]
                facts["gpus"] = [str(gpu.get("name", "")) for gpu in details]
                facts["gpu_details"] = details
                self._facts = {"host": self._handle.host, **facts}
            return dict(self._facts)

    def gpus(self) -> list[str]:
        """The name of each GPU (from nvidia-smi), as lazycluster gives them; empty
        without NVIDIA GPUs."""
        return list(self.facts()["gpus"])

    def gpu_details(self) -> list[dict[str, Any]]:
        """One dict per GPU: index, name, memory (bytes), driver_version, uuid."""
        return [dict(gpu) for gpu in self.facts()["gpu_details"]]

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
                shown = "; ".join(value) if value else "none"
            elif key == "gpu_details":
                continue
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

    def _environment(
        self, env: Mapping[str, str], users: list[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The host's environment (with ``env``), and the homes of ``users``: a
        function call, or, where the host's Python cannot load this one's functions
        (another minor version), the same read by its interpreter as a command."""
        client = self._handle.client()
        if not functions_run_on(str(client.hello.get("python") or "")):
            return self._environment_by_command(client, env, users)
        payload = dumps_call(host_environment_reader(), {"users": users})
        outcome = client.call(payload, env=env, name="reading the environment").result(
            REQUEST_TIMEOUT
        )
        if not isinstance(outcome, CallReturned):
            last = (outcome.traceback.strip().splitlines() or [""])[-1]
            raise RemoteOperationError(
                self._handle.host, "reading the environment", outcome.type_name, last
            )
        host_env, homes = pickle.loads(outcome.value)
        return host_env, homes

    def _environment_by_command(
        self, client: AgentClient, env: Mapping[str, str], users: list[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        output: list[bytes] = []
        python = str(client.hello.get("executable") or "python3")
        command = " ".join(shlex.quote(word) for word in [python, "-c", _READ_ENV, *users])
        call = client.run(
            f"exec {command}",
            env=env,
            on_output=lambda fd, data: output.append(data) if fd == 1 else None,
        )
        code = call.result(REQUEST_TIMEOUT)
        try:
            host_env, homes = json.loads(b"".join(output))
        except ValueError:
            host_env, homes = None, None
        if code != 0 or not isinstance(host_env, dict) or not isinstance(homes, dict):
            raise RemoteOperationError(
                self._handle.host, "reading the environment", "exit code", str(code)
            )
        return host_env, homes

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

    def expand(self, path: str, env: Mapping[str, str]) -> str:
        """``path`` with ``~`` and ``$VAR`` expanded as the shell would, in the
        runtime's environment ``env`` (one request to the host, only when the path has
        a variable), and a relative path made absolute against the working directory.

        Raises:
            UsageError: a variable in it is not set on the host.
        """
        if needs_expansion(path):
            user = tilde_user(path)
            users = [] if user is None else [user]
            host_env, homes = self._environment(env, users)
            path = expand_path(path, host_env, homes.get, self._handle.host)
        if not path.startswith(("/", "~")):
            path = posixpath.join(self._handle.working_dir, path)
        return path

    def create_dir(self, path: str, env: Mapping[str, str]) -> str:
        """Create a folder with its parents (``path`` expanded, see :meth:`expand`);
        its absolute path.

        Raises:
            PathCreationError: it could not be created (names the path and why).
            UsageError: a variable in it is not set on the host.
        """
        if not isinstance(path, str) or not path.strip():
            raise PathCreationError(str(path), self._handle.host, "empty path")
        expanded = self.expand(path, env)
        try:
            return self._handle.client().mkdir(expanded).result(REQUEST_TIMEOUT)
        except RemoteOperationError as exc:
            raise PathCreationError(path, self._handle.host, exc.reason) from None

    def delete_dir(self, path: str, env: Mapping[str, str]) -> bool:
        """Delete a folder recursively (``path`` expanded, see :meth:`expand`); False if
        anything could not be removed.

        Raises:
            UsageError: ``path`` is empty, or a variable in it is not set on the host.
        """
        if not isinstance(path, str) or not path.strip():
            raise UsageError("path must be a non-empty string")
        expanded = self.expand(path, env)
        try:
            return self._handle.client().rmtree(expanded).result(REQUEST_TIMEOUT)
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
