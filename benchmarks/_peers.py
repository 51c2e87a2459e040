"""The peers a user would pick instead of actorcluster, pointed at a test bed.

paramiko and fabric run in this process; OpenSSH through subprocesses; lazycluster and
dask each in a virtualenv of their own (they pin versions that would change this
process's packages), created on first use under ``/tmp`` and reused after.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sshbed import SshBed

__all__ = [
    "PeerUnavailableError",
    "channel_round_trip",
    "control_master",
    "ensure_venv",
    "fabric_config",
    "fabric_group_rate",
    "home_ssh_config",
    "paramiko_client",
    "paramiko_exec",
    "paramiko_exec_threads",
    "run_peer_script",
    "ssh_argv",
]

VENV_TIMEOUT = 600
"""Seconds a virtualenv may take to create and install."""


class PeerUnavailableError(RuntimeError):
    """A peer cannot run here (the message says why); the benchmark goes on without it."""


def paramiko_client(bed: SshBed, index: int = 0) -> paramiko.SSHClient:
    """An SSHClient connected to the bed's host ``index`` with its key and known_hosts."""
    host = bed.hosts[index]
    client = paramiko.SSHClient()
    client.load_host_keys(str(bed.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host.address,
        port=host.port,
        username=bed.user,
        key_filename=str(bed.client_key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
        banner_timeout=10,
        auth_timeout=10,
    )
    return client


def paramiko_exec(client: paramiko.SSHClient, command: str) -> None:
    """``exec_command`` on an open connection; wait for the exit status (must be 0)."""
    _, stdout, _ = client.exec_command(command, timeout=30)
    status = stdout.channel.recv_exit_status()
    if status != 0:
        raise RuntimeError(f"paramiko exec of {command!r} exited {status}")


class channel_round_trip:  # noqa: N801 (used like a function)
    """The floor: one byte out and back over a persistent channel running ``cat``."""

    def __init__(self, client: paramiko.SSHClient) -> None:
        """Open the channel and start ``cat`` on it."""
        transport = client.get_transport()
        assert transport is not None
        self._channel = transport.open_session(timeout=10)
        self._channel.settimeout(10)
        self._channel.exec_command("exec cat")

    def __call__(self) -> None:
        """One round trip."""
        self._channel.sendall(b"x")
        if self._channel.recv(1) != b"x":
            raise RuntimeError("cat echoed something else")

    def close(self) -> None:
        """Close the channel (cat sees its stdin end)."""
        self._channel.close()


def paramiko_exec_threads(bed: SshBed, count: int, timeout: float, per_host: int = 8) -> float:
    """``count`` exec_command("true") over every host, ``per_host`` threads each; per second."""
    clients = [paramiko_client(bed, index) for index in range(len(bed.hosts))]
    try:
        with ThreadPoolExecutor(per_host * len(clients)) as pool:
            started = time.perf_counter()
            jobs = [
                pool.submit(paramiko_exec, clients[i % len(clients)], "true") for i in range(count)
            ]
            for job in jobs:
                job.result(timeout=timeout)
            return count / (time.perf_counter() - started)
    finally:
        for client in clients:
            client.close()


def fabric_group_rate(bed: SshBed, rounds: int) -> float:
    """Commands per second of fabric's ThreadingGroup over every host, ``rounds`` times."""
    import fabric

    names = [host.name for host in bed.hosts]
    group = fabric.ThreadingGroup(*names, config=fabric_config(bed))
    try:
        group.run("true", hide=True)  # connects
        started = time.perf_counter()
        for _ in range(rounds):
            group.run("true", hide=True)
        return rounds * len(names) / (time.perf_counter() - started)
    finally:
        group.close()


def fabric_config(bed: SshBed) -> Any:
    """A fabric ``Config`` that reads the bed's ssh_config instead of ``~/.ssh/config``."""
    import fabric

    return fabric.Config(runtime_ssh_path=str(bed.ssh_config))


def ssh_argv(bed: SshBed, *args: str) -> list[str]:
    """``ssh -F <bed's ssh_config> args...``."""
    return ["ssh", "-F", str(bed.ssh_config), *args]


@contextlib.contextmanager
def control_master(bed: SshBed, host: str, directory: Path) -> Iterator[list[str]]:
    """A running ``ssh -M`` master for ``host``; yields the options that reuse it."""
    path = directory / f"cm-{host}"
    options = ["-o", f"ControlPath={path}"]
    master = subprocess.Popen(
        [*ssh_argv(bed, *options, "-o", "ControlMaster=yes", "-N", host)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not path.exists():
            if master.poll() is not None or time.monotonic() > deadline:
                raise PeerUnavailableError(f"ssh master did not start: {master.stderr!r}")
            time.sleep(0.02)
        yield options
    finally:
        master.terminate()
        master.wait(timeout=10)


def ensure_venv(path: Path, requirements: list[str], *, system_site: bool = False) -> Path:
    """The python of a virtualenv at ``path`` with ``requirements``, created if missing.

    Raises:
        PeerUnavailableError: the virtualenv or the install failed (the pip output says why).
    """
    python = path / "bin" / "python"
    marker = path / ".acbench-ready"
    wanted = " ".join(requirements)
    if marker.exists() and marker.read_text() == wanted:
        return python
    print(f"  creating {path} with {wanted} (first run only; takes a minute)", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, system_site_packages=system_site, clear=True).create(path)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *requirements],
            capture_output=True,
            text=True,
            timeout=VENV_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PeerUnavailableError(f"cannot create {path}: {exc}") from exc
    if done.returncode != 0:
        raise PeerUnavailableError(f"pip install {wanted} failed: {done.stderr[-800:]}")
    marker.write_text(wanted)
    return python


def run_peer_script(python: Path, script: str, args: list[str], timeout: float) -> Any:
    """Run ``benchmarks/<script>`` with ``python``; return the JSON of its last line.

    Raises:
        PeerUnavailableError: it failed or ran past ``timeout`` (then its process group
            is killed); the message has its output's tail.
    """
    argv = [str(python), str(Path(__file__).with_name(script)), *args]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise PeerUnavailableError(f"{script} ran past {timeout:.0f} s; {err[-600:]}") from None
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise PeerUnavailableError(f"{script} exited {proc.returncode}: {err.strip()[-800:]}")
    return json.loads(lines[-1])


@contextlib.contextmanager
def home_ssh_config(bed: SshBed) -> Iterator[None]:
    """Put the bed's hosts in ``~/.ssh/config`` for a while (lazycluster reads only that).

    The user's file comes back afterwards, byte for byte, also when the body fails or
    the process gets SIGTERM; a file or folder that was not there is removed again.
    """
    folder = Path.home() / ".ssh"
    config = folder / "config"
    made_folder = not folder.exists()
    original = config.read_bytes() if config.exists() else None
    previous_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        text = bed.ssh_config.read_text()
        prefix = original.decode(errors="replace") + "\n" if original else ""
        config.write_text(f"{text}\n# acbench: temporary hosts above\n{prefix}")
        config.chmod(0o600)
        yield
    finally:
        if original is None:
            config.unlink(missing_ok=True)
        else:
            config.write_bytes(original)
        if made_folder:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing else was written there meanwhile
        signal.signal(signal.SIGTERM, previous_handler)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)  # unwinds through the finally blocks that restore files
