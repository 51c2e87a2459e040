"""Hosts as separate machines: a network namespace per bed host (``SshBed(isolated=True)``).

Each host gets a network namespace of its own (``ip netns``) with its own loopback, and
a veth pair to this machine: this side ``10.B.N.1/24``, the host ``10.B.N.2/24`` (its
only address besides 127.0.0.1) with its default route back here. ``B`` is the bed's
block, claimed by an exclusive lock on ``/tmp/sshbed-net/B.lock`` (and not in use by any
route here), so beds of engineers running tests at once never share names or subnets;
``N`` is the host's number. Hosts do not reach each other (no forwarding here): what
crosses between hosts goes through this machine, as with a real fleet and a client
outside it. A bastion setup is the exception: :func:`link` gives two hosts a private
link of their own (a veth pair between their namespaces), over which each reaches the
other's own address, and nothing else, as a bastion reaches the hosts behind it.

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
import re
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
    "link",
    "remove_block",
]

LOCK_DIR = Path("/tmp/sshbed-net")
"""Where beds lock their blocks (shared by every user of this machine's root namespace)."""
BLOCKS = range(64, 251)
"""Second octets a bed may take: 10.64.0.0/16 to 10.250.0.0/16."""
_IP_TIMEOUT = 10.0
IP = shutil.which("ip") or "ip"
"""The ``ip`` command, found once (a test may empty ``PATH`` for what it starts)."""
NETNS_ETC = Path("/etc/netns")
"""``ip netns exec NAME`` mounts ``/etc/netns/NAME/resolv.conf`` over ``/etc/resolv.conf``."""
RESOLV_CONF = "# sshbed: nothing answers DNS on the host's own loopback\nnameserver 127.0.0.1\n"
"""Each host's resolver. This machine's nameserver is beyond the host's reach (no
forwarding here): a lookup of a name not in ``/etc/hosts`` would wait 10 s for silence.
On the host's own loopback it is refused at once, and the lookup fails at once ("Temporary
failure in name resolution"), as it does on a real host whose resolver answers."""


class IsolationUnavailableError(RuntimeError):
    """Network namespaces cannot be made here (the message says why and what to do)."""


def _ip(*argv: str, netns: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGV`` (inside ``netns`` if given); its stdout."""
    command = [IP, *(["-n", netns] if netns else []), *argv]
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
    if shutil.which(IP) is None:
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
        self.block = block
        self.index = index
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
        self._resolver_conf().parent.mkdir(parents=True, exist_ok=True)
        self._resolver_conf().write_text(RESOLV_CONF)
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
        return [IP, "netns", "exec", self.netns, *argv]

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
        shutil.rmtree(self._resolver_conf().parent, ignore_errors=True)
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()  # if no other namespace has one

    def _resolver_conf(self) -> Path:
        return NETNS_ETC / self.netns / "resolv.conf"


def _mac(device: str, netns: str | None = None) -> str:
    words = _ip("-o", "link", "show", device, netns=netns).split()
    return words[words.index("link/ether") + 1]


def link(first: NetHost, second: NetHost) -> None:
    """A private link between two hosts' namespaces (idempotent): each reaches the
    other's own address over it, by a route for that address alone, with its own
    address as the source (the bastion of a private network and a host in it). Their
    links to this machine, and :meth:`NetHost.partition`, are untouched."""
    if first.block != second.block or first.index == second.index:
        raise ValueError(f"cannot link {first.netns} and {second.netns}")
    inner = {first: f"p{second.index}", second: f"p{first.index}"}
    if f" {inner[first]}@" in _ip("-o", "link", "show", netns=first.netns):
        return
    staged = {host: f"sb{host.block}l{host.index}x{other.index}"
              for host, other in ((first, second), (second, first))}  # fmt: skip
    _ip("link", "add", staged[first], "type", "veth", "peer", "name", staged[second])
    for host, other in ((first, second), (second, first)):
        _ip("link", "set", staged[host], "netns", host.netns)
        _ip("link", "set", staged[host], "name", inner[host], netns=host.netns)
        _ip("link", "set", inner[host], "up", netns=host.netns)
        _ip("route", "replace", f"{other.address}/32", "dev", inner[host], "src", host.address,
            netns=host.netns)  # fmt: skip


def remove_block(block: int) -> list[str]:
    """Remove every namespace and link of block ``block`` (the bed's or a dead bed's);
    the names removed. Only for a block whose lock is held by the caller."""
    removed = []
    for line in _ip("-o", "link", "show", check=False).splitlines():
        words = line.split()
        name = words[1].partition("@")[0] if len(words) > 1 else ""
        if re.fullmatch(rf"sb{block}(r\d+|l\d+x\d+)", name):  # to a host; a staged link
            _ip("link", "del", name, check=False)
            removed.append(name)
    prefix = f"sshbed-{block}-"
    for entry in (
        sorted(Path("/run/netns").glob(prefix + "*")) if Path("/run/netns").is_dir() else []
    ):
        index = entry.name[len(prefix) :]
        if index.isdigit():
            NetHost(block, int(index)).destroy()
            removed.append(entry.name)
    return removed
