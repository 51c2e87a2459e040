"""Finding, starting and asking the user's keeper (standard library only).

A caller (the command line's thin client, or a runtime made with ``keeper=True``)
connects to the keeper for its ssh_config (:func:`actorcluster.keeper.paths.identity`),
starting it when there is none (:func:`start_keeper`). Requests and answers are JSON
lines over the Unix stream socket.

Of ``socket`` only the C module under it (``_socket``) is imported: the Python wrapper's
enum conversions would cost a call through the keeper more than the rest of its work.
"""

from __future__ import annotations

import _socket
import json
import os
import sys
import time

from actorcluster.keeper import paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from actorcluster._limits import Deadline

__all__ = ["ask", "connect_to", "find_keeper", "request_lines", "start_keeper"]

SERVER_MODULE = "actorcluster.cli.keeper_server"
"""The keeper's program (run as ``python -c``: named here, never imported)."""
_STARTED: list[object] = []
"""The keepers this process started: kept, so that no ``Popen`` is collected while its
keeper runs (it outlives us by design; collecting it would warn)."""


def connect_to(path: str) -> _socket.socket | None:
    """A connection to the keeper listening at ``path``, or None when none listens."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def start_keeper(folder: str, key: str, ssh_config: str | None) -> _socket.socket | None:
    """Start the keeper named ``key`` (or find the one another call just started);
    its connected socket, or None when it did not come up in time."""
    import select
    import subprocess

    from actorcluster._limits import KEEPER_START_TIMEOUT as START_TIMEOUT
    from actorcluster._limits import Deadline

    path = paths.socket_path(folder, key)
    ready_read, ready_write = os.pipe()
    env = dict(os.environ)
    env["ACTORCLUSTER_SSH_CONFIG"] = paths.config_file(ssh_config)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    launch = (
        f"import sys; sys.path.insert(0, {package_root!r}); "
        f"from {SERVER_MODULE} import main; main()"
    )
    log = os.open(
        os.path.join(folder, f"k-{key}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    try:
        started = subprocess.Popen(
            [sys.executable, "-c", launch, path, key, str(ready_write)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ready_write,),
            start_new_session=True,
            cwd="/",
            env=env,
        )
        _STARTED.append(started)
    finally:
        os.close(ready_write)
        os.close(log)
    try:
        readable, _, _ = select.select([ready_read], [], [], START_TIMEOUT)
        said = os.read(ready_read, 64) if readable else b""
    finally:
        os.close(ready_read)
    if said.startswith(b"ready"):
        return connect_to(path)
    if said.startswith(b"taken"):  # another call's keeper is starting: wait for it
        return _await_listening(path, Deadline(START_TIMEOUT))
    return None


def _await_listening(path: str, deadline: Deadline) -> _socket.socket | None:
    """A connection to the keeper at ``path`` once it listens (polled: it is another
    call's child, with no pipe to us), or None at ``deadline``."""
    while not deadline.expired():
        sock = connect_to(path)
        if sock is not None:
            return sock
        time.sleep(0.01)
    return None


def find_keeper(ssh_config: str | None) -> tuple[_socket.socket, str, str] | None:
    """A connection to the keeper for ``ssh_config`` (started if there is none), its
    name and its socket's path; None when there is no private folder or it would not
    start."""
    folder = paths.keeper_dir()
    if folder is None:
        return None
    try:
        key = paths.identity(ssh_config)
        path = paths.socket_path(folder, key)
        sock = connect_to(path) or start_keeper(folder, key, ssh_config)
    except OSError:
        return None
    return None if sock is None else (sock, key, path)


def request_lines(sock: _socket.socket) -> Iterator[dict[str, Any]]:
    """The JSON lines the keeper sends, until it closes the connection."""
    pending = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except InterruptedError:
            continue
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield json.loads(line)


def ask(path: str, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any] | None:
    """Send a one-line ``request`` (``status``, ``stop``, ``alive``) to the keeper at
    ``path``; its answer, or None when nobody answers there."""
    sock = connect_to(path)
    if sock is None:
        return None
    try:
        sock.settimeout(timeout)
        sock.sendall(json.dumps(request).encode() + b"\n")
        return next(request_lines(sock), None)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
