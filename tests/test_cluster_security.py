"""A DaskCluster is closed by default: TLS with temporary certificates between the
client, the scheduler and the workers, and every listener (scheduler, workers, their
HTTP servers) on a loopback or named address, never on all addresses, with tunnels and
without. ``get_client()`` works; a client without the cluster's key is refused, and a
second local user can neither connect nor read the key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("distributed")

from actorcluster import RuntimeGroup
from actorcluster.cluster.dask_cluster import DaskCluster
from local_users import SYSTEM_PYTHON, other_user_fixture  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from sshbed import SshBed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _square(x: int) -> int:
    return x * x


_square.__module__ = "__main__"  # travels by value


def _listening(pid: int) -> list[str]:
    """The addresses (``ip:port``) the process listens on, read from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)
            if family == socket.AF_INET:
                raw = raw[::-1]
            else:
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
            found.append(f"{socket.inet_ntop(family, raw)}:{int(hex_port, 16)}")
    return found


def _pids(cluster: DaskCluster) -> list[int]:
    master = cluster._master_launcher.process
    pids = [master.pid] if master is not None and master.pid else []
    return pids + [p.pid for p in cluster._worker_launcher.processes if p.pid]


ATTACK = textwrap.dedent(
    """
    import socket, ssl, sys
    host, port = sys.argv[1], int(sys.argv[2])
    outcome = []
    # A TLS client without the cluster's certificate: the scheduler demands one.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"\\x00" * 64)
                data = tls.recv(64)
                outcome.append("tls-answered" if data else "tls-closed")
    except (ssl.SSLError, OSError) as exc:
        outcome.append("tls-refused")
    # Plain TCP, as dask's default client speaks.
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            raw.sendall(b"\\x00" * 64)
            raw.settimeout(5)
            data = raw.recv(64)
            outcome.append("tcp-answered" if data.startswith(b"\\x00") else "tcp-refused")
    except OSError:
        outcome.append("tcp-refused")
    print(",".join(outcome))
    """
)


DASK_CLIENT = textwrap.dedent(
    """
    import sys
    from distributed import Client
    from distributed.security import Security
    address = sys.argv[1]
    security = Security.temporary() if address.startswith("tls://") else None
    try:
        Client(address, timeout=5, set_as_default=False, security=security).close()
    except Exception as exc:
        print("refused", type(exc).__name__)
    else:
        print("connected")
    """
)


def _dask_client_as_root(address: str) -> str:
    """What a dask client without the cluster's key gets (in a process of its own)."""
    done = subprocess.run(
        [sys.executable, "-c", DASK_CLIENT, address],
        check=False,
        capture_output=True,
        timeout=60,
    )
    return done.stdout.decode().split(" ")[0].strip() or done.stderr.decode()[-500:]


def _attack_as(user: str, host: str, port: int) -> str:
    done = subprocess.run(
        ["runuser", "-u", user, "--", SYSTEM_PYTHON, "-c", ATTACK, host, str(port)],
        check=False,
        capture_output=True,
        timeout=60,
        cwd="/",
    )
    return done.stdout.decode().strip() + done.stderr.decode()[-500:]


@pytest.mark.parametrize("tunnels", [True, False])
def test_a_dask_cluster_is_closed_to_other_clients_and_other_users(
    ssh_bed: SshBed, other_user: str, tunnels: bool
) -> None:
    group = RuntimeGroup(hosts=["host-1", "host-2"], connection_kwargs=ssh_bed.connection_kwargs)
    with DaskCluster(group, tunnels=tunnels, worker_options={"nthreads": 1}) as cluster:
        cluster.start(worker_count=2)
        with cluster.get_client(timeout=10) as client:
            assert client.submit(_square, 7).result(timeout=60) == 49
        address = cluster.scheduler_address
        assert address is not None and address.startswith("tls://")
        host, port = address[len("tls://") :].rsplit(":", 1)

        listening = {pid: _listening(pid) for pid in _pids(cluster)}
        assert len(listening) == 3 and all(listening.values()), listening
        wide = {
            pid
            for pid, addrs in listening.items()
            for a in addrs
            if a.rsplit(":", 1)[0] in ("0.0.0.0", "::")
        }
        # Wired directly, the scheduler here listens where every host reaches this
        # machine: on loopback, or (separate machines, each seeing this one at its own
        # link's address) on every address, where TLS keeps strangers out (below).
        allowed = {_pids(cluster)[0]} if ssh_bed.isolated and not tunnels else set()
        assert wide <= allowed, f"listening on every address: {wide} ({listening})"

        assert _dask_client_as_root(f"tcp://{host}:{port}") == "refused"  # dask's default
        assert _dask_client_as_root(address) == "refused"  # TLS, another certificate

        outcome = _attack_as(other_user, host, int(port))
        assert outcome.startswith("tls-refused,tcp-refused"), outcome
        tls_folder = f"{group.get_runtime('host-1').working_dir}/.actorcluster-tls"
        assert os.path.isfile(f"{tls_folder}/key.pem")
        read = subprocess.run(
            ["runuser", "-u", other_user, "--", "cat", f"{tls_folder}/key.pem"],
            check=False,
            capture_output=True,
            timeout=30,
        )
        assert read.returncode != 0 and not read.stdout
