"""``bench_rtt.py``'s transfers: a large file and a folder of small files each way,
ours against ``scp`` / ``scp -r`` through the same relay."""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _rttlib import run, runtime_kwargs
from actorcluster import Runtime
from bench_transfer import make_tree, manifest

if TYPE_CHECKING:
    from collections.abc import Callable

    from _benchlib import Report
    from sshbed import SshBed

__all__ = ["transfer", "tree"]

MB = 1e6


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def transfer(bed: SshBed, report: Report, size: int, samples: int) -> None:
    """A file of ``size`` bytes each way, ``samples`` times: ours against scp."""
    section = report.section(
        f"{size / MB:g} MB at {bed.rtt_ms:g} ms RTT", "MB/s", higher_is_better=True
    )
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rttxfer-") as folder,
        Runtime("host-1", connection_kwargs=runtime_kwargs(bed)) as rt,
    ):
        work = Path(folder)
        source = work / "big.bin"
        with source.open("wb") as file:
            for _ in range(size // (1 << 20)):
                file.write(os.urandom(1 << 20))
            file.write(os.urandom(size % (1 << 20)))
        expected = _sha(source)
        scp = ["scp", "-q", "-F", str(bed.ssh_config)]
        ways: dict[str, list[float]] = {
            k: [] for k in ("ours send", "scp send", "ours get", "scp get")
        }
        for repeat in range(samples):
            remote = str(work / f"there-{repeat}.bin")
            back = work / f"back-{repeat}.bin"
            actions: list[tuple[str, Callable[[], object]]] = [
                ("ours send", lambda r=remote: rt.send_file(str(source), r)),
                ("scp send", lambda r=remote: run([*scp, str(source), f"host-1:{r}"])),
                ("ours get", lambda r=remote, b=back: rt.get_file(r, str(b))),
                ("scp get", lambda r=remote, b=back: run([*scp, f"host-1:{r}", str(b)])),
            ]
            for name, action in actions:
                began = time.perf_counter()
                action()
                ways[name].append(size / MB / (time.perf_counter() - began))
                checked = Path(remote) if name.endswith("send") else back
                if _sha(checked) != expected:
                    raise RuntimeError(f"{name}: the copy differs from the source")
                if name.endswith("get"):
                    back.unlink()
            Path(remote).unlink()
    for name, values in ways.items():
        section.add(name, values, ours=name.startswith("ours"), label=name)
    for way in ("send", "get"):
        ours = statistics.median(ways[f"ours {way}"])
        scp = statistics.median(ways[f"scp {way}"])
        report.target(f"{way} {size / MB:g} MB: ours / scp", ours / scp, ">= 1x", ours >= scp)


def tree(bed: SshBed, report: Report, files: int) -> None:
    """A folder of ``files`` small files each way, once: ours against ``scp -r``."""
    section = report.section(
        f"{files:,} files of 2-8 KB at {bed.rtt_ms:g} ms RTT", "files/s", higher_is_better=True
    )
    with (
        tempfile.TemporaryDirectory(prefix="acbench-rtttree-") as folder,
        Runtime("host-1", connection_kwargs=runtime_kwargs(bed)) as rt,
    ):
        work = Path(folder)
        source = work / "tree"
        make_tree(source, files)
        expected = manifest(source)
        scp = ["scp", "-q", "-r", "-F", str(bed.ssh_config)]
        ways: dict[str, list[float]] = {
            k: [] for k in ("ours send", "scp -r send", "ours get", "scp -r get")
        }
        for repeat in range(1):  # scp -r pays round trips per file: minutes at 20 ms
            remote, back = work / f"there-{repeat}", work / f"back-{repeat}"
            actions: list[tuple[str, Callable[[], object]]] = [
                ("ours send", lambda r=remote: rt.send_file(str(source), str(r))),
                ("scp -r send", lambda r=remote: run([*scp, str(source), f"host-1:{r}"], 1800)),
                ("ours get", lambda r=remote, b=back: rt.get_file(str(r), str(b))),
                ("scp -r get", lambda r=remote, b=back: run([*scp, f"host-1:{r}", str(b)], 1800)),
            ]
            for name, action in actions:
                began = time.perf_counter()
                action()
                ways[name].append(files / (time.perf_counter() - began))
                checked = remote if name.endswith("send") else back
                if manifest(checked) != expected:
                    raise RuntimeError(f"{name}: the copy differs from the source")
                if name != "scp -r send":  # what scp sent is what both gets fetch
                    shutil.rmtree(checked)
            shutil.rmtree(remote)
    for name, values in ways.items():
        section.add(name, values, ours=name.startswith("ours"), label=name)
    for way in ("send", "get"):
        ours = statistics.median(ways[f"ours {way}"])
        theirs = statistics.median(ways[f"scp -r {way}"])
        report.target(
            f"{way} {files:,} small files: ours / scp -r",
            ours / theirs,
            ">= 1x",
            ours >= theirs,
        )
