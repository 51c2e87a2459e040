"""Host facts: CPU cores (container quota aware), memory, GPUs, OS and Python.

Stdlib only: this module is shipped with the agent (see the package docstring). The parsing is
done by pure functions that take text, so each format is tested on recorded samples;
:func:`gather_facts` reads the real files under ``root`` (tests point it at a fake
tree) and runs ``nvidia-smi`` when it is on the PATH.

CPU quota and memory limit come from cgroups, v2 (``cpu.max``, ``memory.max``) and v1
(``cpu.cfs_quota_us``/``cpu.cfs_period_us``, ``memory.limit_in_bytes``), read along
the process's cgroup path from its leaf up to the hierarchy's root: the tightest
limit on the way wins.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import socket
import subprocess
from typing import Any

__all__ = [
    "NVIDIA_SMI_QUERY",
    "cgroup_cpu_limit",
    "cgroup_memory_limit",
    "cpu_cores",
    "gather_facts",
    "memory_bytes",
    "os_description",
    "parse_cgroup_v1_cpu",
    "parse_cgroup_v1_memory",
    "parse_cgroup_v2_cpu_max",
    "parse_cgroup_v2_memory_max",
    "parse_meminfo",
    "parse_nvidia_smi",
    "parse_os_release",
    "parse_proc_cgroup",
    "query_gpus",
]

NVIDIA_SMI_QUERY = (
    "--query-gpu=index,name,memory.total,driver_version,uuid",
    "--format=csv,noheader,nounits",
)
"""The arguments :func:`query_gpus` gives ``nvidia-smi``."""

_MIB = 1024 * 1024
_V1_UNLIMITED = 1 << 62
"""cgroup v1 reports "no memory limit" as a huge number (PAGE_COUNTER_MAX pages)."""


# -- parsing (pure) -------------------------------------------------------------------


def parse_nvidia_smi(csv_text: str) -> list[dict[str, Any]]:
    """GPUs from ``nvidia-smi`` output for :data:`NVIDIA_SMI_QUERY`.

    Each GPU is ``{index: int, name: str, memory: bytes or None, driver_version: str,
    uuid: str}``. Lines that are not GPU rows (error text, blank lines) are skipped.
    """
    gpus = []
    for line in csv_text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 5 or not fields[0].isdigit():
            continue
        memory = fields[-3]
        gpus.append(
            {
                "index": int(fields[0]),
                "name": ", ".join(fields[1:-3]),  # a name may hold a comma
                "memory": int(memory) * _MIB if memory.isdigit() else None,
                "driver_version": fields[-2],
                "uuid": fields[-1],
            }
        )
    return gpus


def parse_cgroup_v2_cpu_max(text: str, cpu_count: int) -> int | None:
    """Cores allowed by a v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), rounded up.

    None without a quota; never more than ``cpu_count``, never less than 1.
    """
    fields = text.split()
    try:
        if not fields or fields[0] == "max":
            return None
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return _cores(quota, period, cpu_count)


def parse_cgroup_v1_cpu(quota_text: str, period_text: str, cpu_count: int) -> int | None:
    """Cores allowed by v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (quota -1: None)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return _cores(quota, period, cpu_count)


def _cores(quota: int, period: int, cpu_count: int) -> int | None:
    """``quota/period`` rounded up and clamped to 1..cpu_count; None if no quota."""
    if quota <= 0 or period <= 0:
        return None
    return max(1, min(math.ceil(quota / period), cpu_count))


def parse_cgroup_v2_memory_max(text: str) -> int | None:
    """Bytes allowed by a v2 ``memory.max`` ("max": None)."""
    value = text.strip()
    return int(value) if value.isdigit() else None


def parse_cgroup_v1_memory(text: str) -> int | None:
    """Bytes allowed by a v1 ``memory.limit_in_bytes`` (the "unlimited" value: None)."""
    value = text.strip()
    if not value.isdigit() or int(value) >= _V1_UNLIMITED:
        return None
    return int(value)


def parse_meminfo(text: str) -> int | None:
    """``MemTotal`` from ``/proc/meminfo``, in bytes."""
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemTotal":
            fields = rest.split()
            if fields and fields[0].isdigit():
                unit = fields[1].lower() if len(fields) > 1 else ""
                return int(fields[0]) * (1024 if unit == "kb" else 1)
    return None


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller: path}; the v2 hierarchy's key is ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def parse_os_release(text: str) -> str | None:
    """``PRETTY_NAME`` (else ``NAME`` and ``VERSION``) from ``/etc/os-release``."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip().strip("\"'")
    if values.get("PRETTY_NAME"):
        return values["PRETTY_NAME"]
    name = " ".join(part for part in (values.get("NAME"), values.get("VERSION")) if part)
    return name or None


# -- reading the host -----------------------------------------------------------------


def _read(path: str) -> str | None:
    """The text of ``path``, or None if it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def _under(root: str, path: str) -> str:
    """``path`` (absolute) inside the tree at ``root``."""
    return os.path.join(root, path.lstrip("/"))


def _cgroup_paths(root: str) -> dict[str, str]:
    """The process's cgroup paths (everything at the top when they cannot be read)."""
    text = _read(_under(root, "/proc/self/cgroup"))
    return parse_proc_cgroup(text) if text else {"": "/", "cpu": "/", "memory": "/"}


def _cgroup_dirs(root: str, controller: str, path: str) -> list[str]:
    """The folders of ``controller``'s hierarchy from the process's cgroup up to the top."""
    base = _under(root, "/sys/fs/cgroup")
    if controller:
        names = ["cpu,cpuacct", "cpuacct,cpu", "cpu"] if controller == "cpu" else [controller]
        mounts = [os.path.join(base, name) for name in names]
    else:
        unified = os.path.join(base, "unified")
        mounts = [base if os.path.exists(os.path.join(base, "cgroup.controllers")) else unified]
    mount = next((candidate for candidate in mounts if os.path.isdir(candidate)), None)
    if mount is None:
        return []
    leaf = os.path.normpath(os.path.join(mount, path.lstrip("/")))
    if not leaf.startswith(mount) or not os.path.isdir(leaf):
        leaf = mount  # a cgroup namespace: the mount is our own cgroup
    dirs = [leaf]
    while dirs[-1] != mount:
        dirs.append(os.path.dirname(dirs[-1]))
    return dirs


def cgroup_cpu_limit(root: str, cpu_count: int) -> int | None:
    """The tightest cgroup CPU quota in cores (rounded up), or None if there is none."""
    paths = _cgroup_paths(root)
    limits = []
    if "" in paths:
        for folder in _cgroup_dirs(root, "", paths[""]):
            text = _read(os.path.join(folder, "cpu.max"))
            limits.append(parse_cgroup_v2_cpu_max(text or "", cpu_count))
    if "cpu" in paths:
        for folder in _cgroup_dirs(root, "cpu", paths["cpu"]):
            quota = _read(os.path.join(folder, "cpu.cfs_quota_us")) or ""
            period = _read(os.path.join(folder, "cpu.cfs_period_us")) or ""
            limits.append(parse_cgroup_v1_cpu(quota, period, cpu_count))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def cgroup_memory_limit(root: str) -> int | None:
    """The tightest cgroup memory limit in bytes, or None if there is none."""
    paths = _cgroup_paths(root)
    limits = []
    if "" in paths:
        for folder in _cgroup_dirs(root, "", paths[""]):
            limits.append(
                parse_cgroup_v2_memory_max(_read(os.path.join(folder, "memory.max")) or "")
            )
    if "memory" in paths:
        for folder in _cgroup_dirs(root, "memory", paths["memory"]):
            text = _read(os.path.join(folder, "memory.limit_in_bytes")) or ""
            limits.append(parse_cgroup_v1_memory(text))
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    count = os.cpu_count() or 1
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        count = min(count, len(affinity(0)) or count)
    return count


def cpu_cores(root: str = "/", cpu_count: int | None = None) -> int:
    """CPU cores for this process: the container quota if set, else the usable CPUs.

    Args:
        root: where the host's ``/proc`` and ``/sys`` are (tests use a fake tree).
        cpu_count: the CPUs to clamp to; by default :func:`os.cpu_count` narrowed by
            the process's CPU affinity.
    """
    count = _usable_cpus() if cpu_count is None else cpu_count
    limit = cgroup_cpu_limit(root, count)
    return count if limit is None else min(limit, count)


def memory_bytes(root: str = "/") -> int | None:
    """Memory in bytes: the smaller of the cgroup limit and the machine's total."""
    total = parse_meminfo(_read(_under(root, "/proc/meminfo")) or "")
    if total is None and root == "/":
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):  # no such sysconf name here
            total = None
    limit = cgroup_memory_limit(root)
    found = [value for value in (total, limit) if value is not None]
    return min(found) if found else None


def query_gpus(
    command: str = "nvidia-smi", path: str | None = None, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """GPUs reported by ``nvidia-smi``; [] if it is not on ``path`` (default PATH) or fails."""
    executable = shutil.which(command, path=path)
    if executable is None:
        return []
    try:
        done = subprocess.run(
            [executable, *NVIDIA_SMI_QUERY],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def os_description(root: str = "/") -> str:
    """The OS in words, e.g. "Ubuntu 22.04.3 LTS (Linux 5.15.0-91-generic)"."""
    system, release = platform.system(), platform.release()
    if system == "Linux":
        pretty = parse_os_release(_read(_under(root, "/etc/os-release")) or "")
        return f"{pretty} ({system} {release})" if pretty else f"{system} {release}"
    if system == "Darwin":
        version = platform.mac_ver()[0]
        return f"macOS {version} ({system} {release})" if version else f"{system} {release}"
    return platform.platform()


def gather_facts(
    root: str = "/", nvidia_smi: str = "nvidia-smi", path: str | None = None
) -> dict[str, Any]:
    """Every host fact the FACTS request answers.

    Keys: ``hostname``, ``os``, ``architecture``, ``python_version``, ``cpu_cores``,
    ``memory`` (bytes), ``gpus`` (see :func:`parse_nvidia_smi`), ``workspace_version``
    (None: no ML workspace image is assumed).

    Args:
        root: where the host's ``/proc``, ``/sys`` and ``/etc`` are.
        nvidia_smi: the GPU query command.
        path: the search path for ``nvidia_smi`` (default: PATH).
    """
    return {
        "hostname": socket.gethostname(),
        "os": os_description(root),
        "architecture": platform.machine(),
        "python_version": platform.python_version(),
        "cpu_cores": cpu_cores(root),
        "memory": memory_bytes(root),
        "gpus": query_gpus(nvidia_smi, path),
        "workspace_version": None,
    }
