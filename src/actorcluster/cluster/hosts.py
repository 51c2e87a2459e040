"""What a cluster needs to know about its hosts' networks, asked of all hosts at once.

* :func:`shared_loopback`: which hosts share this machine's loopback (the ``localhost``
  runtime, containers on the host network, the test bed's sshd hosts on 127.0.0.x).
  Such a host reaches a listener here at ``127.0.0.1`` directly, and a tunnel listening
  there at the same port could not even be opened: the cluster's wiring leaves them out.
* :func:`ssh_addresses`: the address each host sees this machine at, and its own
  address as we reached it (``$SSH_CONNECTION`` there), for direct wiring.
* :func:`run_all`: a short command on many hosts at once, with its output.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from actorcluster._limits import REQUEST_TIMEOUT
from actorcluster.groups.fanout import on_agents
from actorcluster.tunnels import LOOPBACK

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actorcluster.runtimes import Runtime

__all__ = ["Captured", "run_all", "shared_loopback", "ssh_addresses"]


class Captured:
    """A command's exit code and output (stdout and stderr together)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.code: int | None = None

    def add(self, _fd: int, data: bytes) -> None:
        """Keep a piece of output (on the session's reader thread)."""
        self.chunks.append(data)

    @property
    def text(self) -> str:
        """The output, decoded leniently."""
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def run_all(
    runtimes: Mapping[str, Runtime], command: str, timeout: float = REQUEST_TIMEOUT
) -> tuple[dict[str, Captured], dict[str, Exception]]:
    """Run ``command`` on every runtime at once; each host's output and exit code, and
    the errors of hosts that could not run it."""
    captured = {host: Captured() for host in runtimes}
    outcomes = on_agents(
        runtimes,
        lambda client: client.run(command, on_output=captured[client.host].add),
        timeout,
    )
    for host, code in outcomes.values.items():
        captured[host].code = code
    return {host: captured[host] for host in outcomes.values}, dict(outcomes.errors)


def shared_loopback(runtimes: Mapping[str, Runtime]) -> dict[str, bool]:
    """Whether each host shares this machine's loopback: a port held here (on
    127.0.0.1) is busy there too. One request per host, all at once."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        probe.listen()
        port = probe.getsockname()[1]
        outcomes = on_agents(runtimes, lambda client: client.ports_free([port], LOOPBACK))
    outcomes.raise_first()
    return {
        host: runtime.handle.is_local or not outcomes.values[host][0]
        for host, runtime in runtimes.items()
    }


def ssh_addresses(runtimes: Mapping[str, Runtime]) -> dict[str, tuple[str, str]]:
    """Each host's ``(this machine's address as the host sees it, the host's own
    address as we reached it)``; loopback for the ``localhost`` runtime."""
    remote = {host: rt for host, rt in runtimes.items() if not rt.handle.is_local}
    found = {host: (LOOPBACK, LOOPBACK) for host in runtimes if host not in remote}
    if remote:
        captured, errors = run_all(remote, "printf '%s' \"$SSH_CONNECTION\"")
        for error in errors.values():
            raise error
        for host, output in captured.items():
            parts = output.text.split()
            if len(parts) == 4:
                found[host] = (parts[0], parts[2])
            else:  # no SSH_CONNECTION (a login that dropped it): the address we dialled
                found[host] = (LOOPBACK, runtimes[host].handle.address)
    return found
