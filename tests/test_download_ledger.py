"""A client SIGKILLed during get_file leaves no ``.part`` for good: its partial
download is in its ledger, and the next client's first download sweeps it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime
from cli_runner import cli_env
from waiting import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from sshbed import SshBed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CLIENT = textwrap.dedent(
    """
    import json, sys
    from actorcluster import Runtime
    kwargs, remote, local = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    rt = Runtime("host-1", connection_kwargs=kwargs)
    told = []

    def progress(done, total):
        if done and not told:
            told.append(1)
            print("downloading", flush=True)

    rt.get_file(remote, local, progress=progress)
    print("finished", flush=True)
    """
)


def _parts(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".part")]


def test_a_client_killed_during_get_file_leaves_no_part_file(
    ssh_bed: SshBed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote" / "big.bin"
    remote.parent.mkdir()
    with open(remote, "wb") as file:  # 512 MiB, sparse: quick to make, slow to send
        file.truncate(512 * 1024 * 1024)
    landing = tmp_path / "landing"
    landing.mkdir()
    env = cli_env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLIENT,
            json.dumps(ssh_bed.connection_kwargs),
            str(remote),
            str(landing / "big.bin"),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == b"downloading"
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
        if client.stdout is not None:
            client.stdout.close()
    assert _parts(landing), "the killed client left no partial file (it finished?)"
    # The next client, on its first download, sweeps the dead one's ledger.
    small = tmp_path / "remote" / "small.txt"
    small.write_text("small")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    try:
        rt.get_file(str(small), str(tmp_path / "small.txt"))
    finally:
        rt.cleanup()
    assert _parts(landing) == []


TLS_CLIENT = textwrap.dedent(
    """
    import os, signal
    from actorcluster.cluster.security import ClusterTLS
    tls = ClusterTLS()  # kept: its folder goes with it
    cert, key = tls.local_files()
    print(os.path.dirname(cert), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_client_killed_holding_a_cluster_key_leaves_no_key_folder_for_good(
    tmp_path: Path,
) -> None:
    """A cluster's TLS key lives in a private temporary folder here; a client SIGKILLed
    with a cluster up cannot remove it, so the next client that makes one sweeps it."""
    env = cli_env(XDG_CACHE_HOME=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", TLS_CLIENT], capture_output=True, env=env, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    killed = done.stdout.decode().strip()
    assert os.path.isfile(os.path.join(killed, "key.pem"))  # left behind by the kill
    survivor = subprocess.run(
        [sys.executable, "-c", TLS_CLIENT.replace("os.kill(os.getpid(), signal.SIGKILL)", "")],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert survivor.returncode == 0, survivor.stderr
    wait_until(lambda: not os.path.exists(killed), 20, "the dead client's key folder swept")
    assert not os.path.exists(survivor.stdout.decode().strip())  # its own, removed at exit
