"""Which process group listens on a port: telling a master's own socket from another
program's that took its port first.

Linux only (``/proc``): a LISTEN socket's inode is in ``/proc/net/tcp`` and
``/proc/net/tcp6``, and a process holds it as ``socket:[inode]`` among its file
descriptors. Elsewhere the answer is None (unknown).

Stdlib only (see the package docstring).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["listened_by"]

_LISTEN = "0A"
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def listened_by(ports: Sequence[int], group: int) -> list[bool | None]:
    """For each port: whether a process of process group ``group`` listens on it (None
    where the host cannot tell)."""
    if not os.path.exists(_TABLES[0]):
        return [None for _ in ports]
    wanted = set(ports)
    inodes: dict[str, int] = {}  # socket inode -> port
    for table in _TABLES:
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines, None)  # the header
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _LISTEN:
                    continue
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in wanted:
                    inodes[fields[9]] = port
    held = dict.fromkeys(ports, False)
    for pid in _members(group):
        for port in _held_sockets(pid, inodes):
            held[port] = True
    return [held[port] for port in ports]


def _members(group: int) -> list[int]:
    """The pids of process group ``group``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # state, ppid, pgrp
                members.append(int(name))
    return members


def _held_sockets(pid: int, inodes: dict[str, int]) -> list[int]:
    """The ports (of ``inodes``) whose listening socket process ``pid`` holds."""
    ports = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    ports.append(inodes[target[8:-1]])
    return ports
