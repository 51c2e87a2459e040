"""Host facts: parsing recorded outputs, and reading fake /proc and /sys trees."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote.agent import facts

if TYPE_CHECKING:
    from pathlib import Path

GIB = 1024**3

H100_ROW = "0, NVIDIA H100 80GB HBM3, 81559, 535.104.05, GPU-5b3c8e2a-1f4d-6b7a-9c0e-2d4f6a8b0c1e\n"
EIGHT_A100 = "".join(
    f"{i}, NVIDIA A100-SXM4-40GB, 40960, 525.85.12, GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd\n"
    for i in range(8)
)
DRIVER_ERROR = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n\n"
)


def test_one_gpu_row_becomes_one_gpu_with_memory_in_bytes() -> None:
    assert facts.parse_nvidia_smi(H100_ROW) == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory": 81559 * 1024 * 1024,
            "driver_version": "535.104.05",
            "uuid": "GPU-5b3c8e2a-1f4d-6b7a-9c0e-2d4f6a8b0c1e",
        }
    ]


def test_several_gpu_rows_keep_their_order() -> None:
    gpus = facts.parse_nvidia_smi(EIGHT_A100)
    assert [gpu["index"] for gpu in gpus] == list(range(8))
    assert {gpu["name"] for gpu in gpus} == {"NVIDIA A100-SXM4-40GB"}
    assert gpus[7]["uuid"].startswith("GPU-00000007")


@pytest.mark.parametrize("text", ["", "\n", DRIVER_ERROR, "No devices were found\n"])
def test_empty_output_or_error_text_means_no_gpus(text: str) -> None:
    assert facts.parse_nvidia_smi(text) == []


def test_unknown_memory_and_a_comma_in_the_name_are_handled() -> None:
    row = "1, Tesla K80, rev 2, [N/A], 470.82.01, GPU-1\n"
    assert facts.parse_nvidia_smi(row) == [
        {
            "index": 1,
            "name": "Tesla K80, rev 2",
            "memory": None,
            "driver_version": "470.82.01",
            "uuid": "GPU-1",
        }
    ]


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_query_gpus_runs_nvidia_smi_from_the_path(tmp_path: Path) -> None:
    _script(tmp_path, "nvidia-smi", f"printf '%s' '{EIGHT_A100}'")
    assert len(facts.query_gpus(path=str(tmp_path))) == 8


def test_query_gpus_without_nvidia_smi_is_empty(tmp_path: Path) -> None:
    assert facts.query_gpus(path=str(tmp_path)) == []


def test_query_gpus_when_nvidia_smi_fails_is_empty(tmp_path: Path) -> None:
    _script(tmp_path, "nvidia-smi", f"echo '{DRIVER_ERROR.strip()}'; exit 9")
    assert facts.query_gpus(path=str(tmp_path)) == []


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [
        ("max 100000\n", 8, None),
        ("200000 100000\n", 8, 2),
        ("150000 100000\n", 8, 2),
        ("50000 100000\n", 8, 1),
        ("800000 100000\n", 4, 4),
        ("300000\n", 8, 3),
        ("garbage", 8, None),
        ("", 8, None),
    ],
)
def test_cgroup_v2_cpu_max_gives_cores_rounded_up_and_clamped(
    text: str, count: int, expected: int | None
) -> None:
    assert facts.parse_cgroup_v2_cpu_max(text, count) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("-1\n", "100000\n", None), ("250000\n", "100000\n", 3), ("x", "100000", None)],
)
def test_cgroup_v1_cpu_quota_gives_cores_rounded_up(
    quota: str, period: str, expected: int | None
) -> None:
    assert facts.parse_cgroup_v1_cpu(quota, period, 16) == expected


def test_memory_limits_and_meminfo_parse_to_bytes() -> None:
    assert facts.parse_cgroup_v2_memory_max("max\n") is None
    assert facts.parse_cgroup_v2_memory_max("1073741824\n") == GIB
    assert facts.parse_cgroup_v1_memory("9223372036854771712\n") is None
    assert facts.parse_cgroup_v1_memory("536870912\n") == GIB // 2
    meminfo = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"
    assert facts.parse_meminfo(meminfo) == 16384000 * 1024
    assert facts.parse_meminfo("MemFree: 1 kB\n") is None


def test_proc_cgroup_maps_each_controller_to_its_path() -> None:
    text = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/system.slice/x.scope\n"
    paths = facts.parse_proc_cgroup(text)
    assert paths["cpu"] == paths["cpuacct"] == paths["memory"] == "/docker/abc"
    assert paths[""] == "/system.slice/x.scope"


def test_os_release_gives_the_pretty_name() -> None:
    text = (
        'NAME="Ubuntu"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\nPRETTY_NAME="Ubuntu 22.04.3 LTS"\n'
    )
    assert facts.parse_os_release(text) == "Ubuntu 22.04.3 LTS"
    assert facts.parse_os_release('NAME="Alpine"\nVERSION=3.19\n') == "Alpine 3.19"
    assert facts.parse_os_release("") is None


def _tree(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


MEMINFO_16G = "MemTotal:       16777216 kB\n"


def test_a_cgroup_v2_container_reports_its_quota_and_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/kubepods/pod1/c1\n",
            "proc/meminfo": MEMINFO_16G,
            "sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
            "sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "max 100000\n",
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/kubepods/pod1/c1/memory.max": "2147483648\n",
            "sys/fs/cgroup/kubepods/memory.max": "max\n",
        },
    )
    assert facts.cpu_cores(root, cpu_count=8) == 2  # the parent's quota binds
    assert facts.memory_bytes(root) == 2 * GIB


def test_a_cgroup_v1_container_reports_its_quota_and_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "3:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n",
            "proc/meminfo": MEMINFO_16G,
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "536870912\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        },
    )
    assert facts.cpu_cores(root, cpu_count=8) == 1
    assert facts.memory_bytes(root) == GIB // 2


def test_a_cgroup_namespace_reads_the_limits_at_the_mount(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "3:cpu:/docker/abc\n4:memory:/docker/abc\n",
            "proc/meminfo": MEMINFO_16G,
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
        },
    )
    assert facts.cpu_cores(root, cpu_count=8) == 3
    assert facts.memory_bytes(root) == GIB


def test_without_limits_the_machine_totals_count(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/self/cgroup": "0::/\n", "proc/meminfo": MEMINFO_16G})
    assert facts.cpu_cores(root, cpu_count=6) == 6
    assert facts.memory_bytes(root) == 16 * GIB


def test_a_memory_limit_above_the_machine_total_does_not_count(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/\n",
            "proc/meminfo": MEMINFO_16G,
            "sys/fs/cgroup/cgroup.controllers": "memory\n",
            "sys/fs/cgroup/memory.max": str(64 * GIB),
        },
    )
    assert facts.memory_bytes(root) == 16 * GIB


def test_gather_facts_has_every_key_with_sane_values(tmp_path: Path) -> None:
    found = facts.gather_facts(path=str(tmp_path))  # no nvidia-smi there
    assert set(found) >= {
        "hostname",
        "os",
        "python_version",
        "cpu_cores",
        "memory",
        "gpus",
        "workspace_version",
    }
    assert 1 <= found["cpu_cores"] <= (os.cpu_count() or 1)
    assert found["memory"] > 0
    assert found["gpus"] == []
    assert found["workspace_version"] is None
    assert found["os"]
