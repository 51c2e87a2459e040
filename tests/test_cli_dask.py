"""``actorcluster dask``: a supervised Dask cluster from the command line, until Ctrl-C.

Kept apart from test_cli.py: it needs the cluster module (issue 15) and ``distributed``.
"""

from __future__ import annotations

import importlib.util
import re
import signal

import pytest

from cli_runner import cli, start_cli
from proctree import cmdline
from waiting import wait_until

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        importlib.util.find_spec("distributed") is None
        or importlib.util.find_spec("actorcluster.cluster.dask_cluster") is None,
        reason="needs actorcluster.cluster.dask_cluster and distributed",
    ),
]


def _dask_processes(bed) -> list[int]:
    """Dask processes the bed's hosts run (their sessions' descendants)."""
    return [
        pid
        for host in bed.hosts
        for pid in host.session_pids()
        if b"distributed" in cmdline(pid) or b"dask" in cmdline(pid)
    ]


def _read_until(process, prefix: bytes) -> dict[str, str]:
    """Lines of stdout up to the one starting with ``prefix``, as ``{key: value}``."""
    found: dict[str, str] = {}
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        assert line, f"stdout ended before {prefix!r}: {process.stderr.read().decode()}"
        key, _, value = line.decode().partition(": ")
        found[key] = value.strip()
        if line.startswith(prefix):
            return found


def test_dask_runs_a_cluster_until_ctrl_c_then_leaves_nothing(make_ssh_bed):
    from distributed import Client
    from distributed.security import Security

    bed = make_ssh_bed(2)
    process = start_cli("dask", "host-1,host-2", "--workers", "3", ssh_config=bed.ssh_config)
    try:
        announced = _read_until(process, b"workers:")
        assert announced["scheduler"].startswith("tls://")  # closed by default
        security = Security(**dict(item.split("=", 1) for item in announced["tls"].split()))
        bokeh = importlib.util.find_spec("bokeh") is not None
        assert announced["dashboard"].startswith("http" if bokeh else "none")
        assert announced["workers"] == "3 on host-1, host-2"
        with Client(announced["scheduler"], timeout=30, security=security) as client:
            client.wait_for_workers(3, timeout=60)
            assert client.submit(sum, range(10)).result(timeout=60) == 45
        assert _dask_processes(bed)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert b"stopped the scheduler and 3 worker(s); cleaned up host-1, host-2" in err
    assert b"Traceback" not in err
    wait_until(lambda: _dask_processes(bed) == [], 30, "no Dask process left on the hosts")
    for host in bed.hosts:
        wait_until(lambda host=host: host.session_pids() == [], 30, f"{host.name} is clean")


def test_dask_on_an_unreachable_host_exits_68(ssh_bed):
    result = cli("dask", "no-such-host.invalid", ssh_config=ssh_bed.ssh_config)
    assert result.returncode == 68
    assert b"Traceback" not in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dask_python_is_the_workers_interpreter_only(make_ssh_bed, tmp_path):
    import sys

    bed = make_ssh_bed(1)
    used = tmp_path / "used"
    wrapper = tmp_path / "python-for-workers"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {used}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    process = start_cli(
        "dask",
        "host-1",
        "--python",
        str(wrapper),
        "--port",
        str(_free_port()),
        ssh_config=bed.ssh_config,
    )
    try:
        announced = _read_until(process, b"workers:")
        assert announced["workers"] == "1 on host-1"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 0, err
    runs = used.read_text()
    # The workers' interpreter was checked for distributed (dask_deps' check script).
    assert re.search(r"""find_spec\(["']distributed["']\)""", runs)
    assert "dask_scheduler" not in runs  # the scheduler ran with the command line's own
