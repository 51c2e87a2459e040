"""The steps a task is made of: what crosses from a ``RuntimeTask`` to a ``TaskActor``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GetFile", "RunCommand", "RunFunction", "SendFile", "Step"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCommand:
    """Run a shell command on the host."""

    command: str
    """The command line, passed to the host's shell as one literal string."""

    def describe(self) -> str:
        """A one-line description for logs and errors."""
        return self.command


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFile:
    """Send a local file or folder to the host."""

    local_path: str
    """The local file or folder."""
    remote_path: str | None = None
    """Where it goes on the host; relative to the working directory; None: the working
    directory, under the local name."""
    preserve_special_bits: bool = False
    """Keep setuid, setgid and sticky bits (dropped by default)."""

    def describe(self) -> str:
        """A one-line description for logs and errors."""
        return f"send_file {self.local_path} -> {self.remote_path or '<working dir>'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetFile:
    """Fetch a file or folder from the host."""

    remote_path: str
    """The file or folder on the host; relative to the working directory."""
    local_path: str | None = None
    """Where it goes here; None: the current directory, under the remote name."""
    preserve_special_bits: bool = False
    """Keep setuid, setgid and sticky bits (dropped by default)."""

    def describe(self) -> str:
        """A one-line description for logs and errors."""
        return f"get_file {self.remote_path} -> {self.local_path or '<cwd>'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFunction:
    """Call a Python function on the host."""

    payload: bytes
    """``cloudpickle.dumps((function, kwargs))``."""
    name: str
    """The function's qualified name, for logs and errors."""
    isolated: bool = False
    """Run it in a child process of the agent (own env and cwd, killable), not on a
    thread of the agent."""

    def describe(self) -> str:
        """A one-line description for logs and errors."""
        return f"run_function {self.name}" + (" (isolated)" if self.isolated else "")


Step = RunCommand | SendFile | GetFile | RunFunction
"""Any one step."""
