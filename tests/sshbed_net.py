"""Hosts as separate machines: a network namespace per bed host (``SshBed(isolated=True)``).

Each host gets a network namespace of its own (``ip netns``) with its own loopback, and
a veth pair to this machine: this side ``10.B.N.1/24``, the host ``10.B.N.2/24`` (its
only address besides 127.0.0.1) with its default route back here. ``B`` is the bed's
block, claimed by an exclusive lock on ``/tmp/sshbed-net/B.lock`` (and not in use by any
route here), so beds of engineers running tests at once never share names or subnets;
``N`` is the host's number. Hosts do not reach each other (no forwarding here): what
crosses between hosts goes through this machine, as with a real fleet and a client
outside it.

A partition takes the host's end of the link down. Both ends have permanent neighbour
entries, so this side keeps sending onto the veth, where the packets are dropped:
silence, not a reset, neither for open connections nor for new ones, as when a cable is
pulled. :func:`remove_block` tears a bed's namespaces down (the bed at stop, its
watchdog if the bed's process died).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path

__all__ = [
    "LOCK_DIR",
    "IsolationUnavailableError",
    "NetBlock",
    "NetHost",
    "isolation_obstacle",
    "remove_block",
]

LOCK_DIR = Path("/tmp/sshbed-net")
"""Where beds lock their blocks (shared by every user of this machine's root namespace)."""
BLOCKS = range(64, 251)
"""Second octets a bed may take: 10.64.0.0/16 to 10.250.0.0/16."""
_IP_TIMEOUT = 10.0


class IsolationUnavailableError(RuntimeError):
    """Network namespaces cannot be made here (the message says why and what to do)."""


def _ip(*argv: str, netns: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGV`` (inside ``netns`` if given); its stdout."""
    command = ["ip", *(["-n", netns] if netns else []), *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False)
    if check and done.returncode != 0:
        raise IsolationUnavailableError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


_obstacle: list[str | None] = []


def isolation_obstacle() -> str | None:
    """Why hosts cannot be isolated here (None if they can): tried once per process by
    making and removing a namespace."""
    if _obstacle:
        return _obstacle[0]
    why: str | None = None
    if shutil.which("ip") is None:
        why = "the `ip` command (iproute2) is not installed: apt-get install iproute2"
    elif os.geteuid() != 0:
        why = "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run as root"
    else:
        name = f"sshbed-probe-{os.getpid()}-{random.randrange(1 << 30)}"
        try:
            _ip("netns", "add", name)
            _ip("link", "set", "lo", "up", netns=name)
        except (IsolationUnavailableError, OSError, subprocess.SubprocessError) as error:
            why = f"cannot make a network namespace here ({error}); a container needs --privileged"
        finally:
            _ip("netns", "del", name, check=False)
    _obstacle.append(why)
    return why


def _block_in_use(block: int) -> bool:
    """Whether any route or address here already covers 10.B.0.0/16."""
    return bool(_ip("-4", "route", "show", "root", f"10.{block}.0.0/16", check=False).strip()) or (
        f" 10.{block}." in _ip("-4", "-o", "addr", check=False)
    )


class NetBlock:
    """A bed's 10.B.0.0/16, held by a lock file until :meth:`release` (or the death of
    every process that holds the lock's descriptor: the bed's and its watchdog)."""

    def __init__(self) -> None:
        """Claim a free block; raise IsolationUnavailableError if none is left."""
        LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(LOCK_DIR, 0o1777)
        for block in random.sample(list(BLOCKS), len(BLOCKS)):
            fd = os.open(LOCK_DIR / f"{block}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            remove_block(block)  # nobody holds the lock: what is left of a bed is an orphan
            if _block_in_use(block):  # another network of this machine uses 10.B: not ours
                os.close(fd)
                continue
            self.block = block
            self.lock_fd = fd
            return
        raise IsolationUnavailableError(f"every block 10.{BLOCKS[0]}-{BLOCKS[-1]}.0.0 is taken")

    def host(self, index: int) -> NetHost:
        """Host ``index``'s namespace (not made yet: :meth:`NetHost.create`)."""
        return NetHost(self.block, index)

    def release(self) -> None:
        """Let go of the block (after :func:`remove_block`)."""
        fd, self.lock_fd = self.lock_fd, -1
        if fd >= 0:
            os.close(fd)


class NetHost:
    """One host's namespace and its link to this machine."""

    def __init__(self, block: int, index: int) -> None:
        """Names and addresses of host ``index`` in block ``block``."""
        if not 1 <= index <= 253:
            raise ValueError(f"an isolated bed has hosts 1 to 253, not {index}")
        self.netns = f"sshbed-{block}-{index}"
        self.address = f"10.{block}.{index}.2"
        """The host's own address (its sshd listens there)."""
        self.gateway = f"10.{block}.{index}.1"
        """This machine's address on the link: what the host sees its clients come from."""
        self.outer = f"sb{block}r{index}"
        """This side's end of the veth pair."""
        self.inner = "eth0"
        self.partitioned = False
        self.created = False

    def create(self) -> None:
        """Make the namespace, the link and the routes (idempotent: remade from scratch)."""
        self.destroy()
        staged = f"sb{self.netns.split('-')[1]}h{self.netns.split('-')[2]}"
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", staged)
        _ip("link", "set", staged, "netns", self.netns)
        _ip("link", "set", staged, "name", self.inner, netns=self.netns)
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.outer)
        _ip("addr", "add", f"{self.address}/24", "dev", self.inner, netns=self.netns)
        _ip("link", "set", "lo", "up", netns=self.netns)
        _ip("link", "set", self.outer, "up")
        _ip("link", "set", self.inner, "up", netns=self.netns)
        outer_mac = _mac(self.outer)
        inner_mac = _mac(self.inner, self.netns)
        # Permanent neighbours: no ARP, so a partition drops packets (no "host unreachable").
        _ip(
            "neigh",
            "replace",
            self.address,
            "lladdr",
            inner_mac,
            "dev",
            self.outer,
            "nud",
            "permanent",
        )
        self._outer_mac = outer_mac
        self._link_up()
        self.created = True

    def _link_up(self) -> None:
        _ip("link", "set", self.inner, "up", netns=self.netns)
        _ip(
            "neigh", "replace", self.gateway, "lladdr", self._outer_mac, "dev", self.inner,
            "nud", "permanent", netns=self.netns,
        )  # fmt: skip
        _ip("route", "replace", "default", "via", self.gateway, netns=self.netns)

    def partition(self) -> None:
        """Pull the cable: the host's end goes down, every packet either way is dropped."""
        _ip("link", "set", self.inner, "down", netns=self.netns)
        self.partitioned = True

    def heal(self) -> None:
        """Plug it back in: the link, the neighbour entry and the default route return."""
        self._link_up()
        self.partitioned = False

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def pids(self) -> list[int]:
        """Every process in the namespace."""
        out = _ip("netns", "pids", self.netns, check=False)
        return [int(word) for word in out.split() if word.isdigit()]

    def kill_all(self) -> None:
        """SIGKILL every process in the namespace (a machine switched off)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Kill what runs in it, remove the link and the namespace (none of it may exist)."""
        self.created = False
        if Path("/run/netns", self.netns).exists():
            self.kill_all()
        _ip("link", "del", self.outer, check=False)
        _ip("netns", "del", self.netns, check=False)


def _mac(device: str, netns: str | None = None) -> str:
    words = _ip("-o", "link", "show", device, netns=netns).split()
    return words[words.index("link/ether") + 1]


def remove_block(block: int) -> list[str]:
    """Remove every namespace and link of block ``block`` (the bed's or a dead bed's);
    the names removed. Only for a block whose lock is held by the caller."""
    removed = []
    for line in _ip("-o", "link", "show", check=False).splitlines():
        words = line.split()
        link = words[1].partition("@")[0] if len(words) > 1 else ""
        if link.startswith(f"sb{block}r") and link[len(f"sb{block}r") :].isdigit():
            _ip("link", "del", link, check=False)
            removed.append(link)
    prefix = f"sshbed-{block}-"
    for entry in (
        sorted(Path("/run/netns").glob(prefix + "*")) if Path("/run/netns").is_dir() else []
    ):
        index = entry.name[len(prefix) :]
        if index.isdigit():
            NetHost(block, int(index)).destroy()
            removed.append(entry.name)
    return removed
