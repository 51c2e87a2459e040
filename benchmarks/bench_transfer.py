"""File transfer speed (issue 4) against scp, side by side, in one run.

``python3 benchmarks/bench_transfer.py [--json PATH] [--full] [--skip PARTS]`` starts a
private bed of one sshd host, makes a 200 MB file of random bytes and a folder of 2,000
small files (2-8 KB, in nested sub-folders), and moves each to the host and back with
``Runtime.send_file``/``get_file``, ``scp``/``scp -r`` (SFTP protocol, OpenSSH's
default), ``scp -O`` (the legacy protocol) and fabric's ``put``/``get`` (SFTP), against
the same host, alternating within each repetition. Every copy is checked (size and
SHA-256 of every file) before it counts. MB is 10^6 bytes. 3 repetitions (``--full``:
5). PARTS for ``--skip``: file, tree, legacy, fabric. ``--quick`` (``BENCH_QUICK=1``): a
2 MB file and 20 small files, once.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _benchlib
from _benchlib import Report, environment_notes, ssh_bed
from _peers import fabric_config, ssh_argv
from actorcluster import Runtime

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from sshbed import SshBed

FILE_BYTES = 200 * 1000 * 1000
TREE_FILES = 2000
TREE_FOLDERS = ("a", "a/deep", "a/deep/er", "b", "b/one", "c", "d", "e/x", "e/y", "f")
MB = 1e6

Manifest = dict[str, tuple[int, str]]


def make_file(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path``."""
    with path.open("wb") as out:
        left = size
        while left:
            piece = min(left, 8 * 1024 * 1024)
            out.write(os.urandom(piece))
            left -= piece


def make_tree(root: Path, count: int) -> int:
    """Write ``count`` files of 2-8 KB spread over nested folders; return their total size."""
    rng = random.Random(4)
    total = 0
    for index in range(count):
        folder = root / TREE_FOLDERS[index % len(TREE_FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(2048, 8192))
        (folder / f"file-{index:04d}.dat").write_bytes(data)
        total += len(data)
    return total


def manifest(root: Path) -> Manifest:
    """Relative path -> (size, SHA-256) of every file under ``root`` (or of ``root``)."""
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    found = {}
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(4 * 1024 * 1024):
                digest.update(chunk)
        name = "." if path == root else str(path.relative_to(root))
        found[name] = (path.stat().st_size, digest.hexdigest())
    return found


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class Transfers:
    """One way of moving a file or folder each way, timed and checked."""

    def __init__(
        self,
        name: str,
        send: Callable[[Path, Path], None],
        fetch: Callable[[Path, Path], None],
        *,
        ours: bool = False,
        label: str = "",
    ) -> None:
        """``send(local, remote)`` and ``fetch(remote, local)`` do one transfer each."""
        self.name = name
        self.send = send
        self.fetch = fetch
        self.ours = ours
        self.label = label
        self.sent: list[float] = []
        self.fetched: list[float] = []

    def once(self, source: Path, scratch: Path, expected: Manifest) -> None:
        """Send ``source`` to the host and fetch it back; time each; check both copies."""
        there, back = scratch / "there", scratch / "back"
        for path in (there, back):
            _remove(path)
        self.sent.append(_timed(lambda: self.send(source, there)))
        _check(self.name, "sent", there, expected)
        self.fetched.append(_timed(lambda: self.fetch(there, back)))
        _check(self.name, "fetched", back, expected)
        for path in (there, back):
            _remove(path)


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _check(name: str, what: str, copy: Path, expected: Manifest) -> None:
    found = manifest(copy) if copy.exists() else {}
    if found != expected:
        missing = len(set(expected) - set(found))
        wrong = sum(1 for key in expected if key in found and found[key] != expected[key])
        raise RuntimeError(f"{name}: the {what} copy differs: {missing} missing, {wrong} wrong")


def _scp(bed: SshBed, *options: str) -> tuple[Callable[[Path, Path], None], ...]:
    base = ["scp", "-q", "-F", str(bed.ssh_config), *options]

    def run(*args: str) -> None:
        subprocess.run([*base, *args], check=True, stdin=subprocess.DEVNULL, timeout=300)

    def send(local: Path, remote: Path) -> None:
        run("-r", str(local), f"host-1:{remote}")

    def fetch(remote: Path, local: Path) -> None:
        run("-r", f"host-1:{remote}", str(local))

    return send, fetch


def _ours(runtime: Runtime) -> tuple[Callable[[Path, Path], None], ...]:
    def send(local: Path, remote: Path) -> None:
        runtime.send_file(str(local), str(remote))

    def fetch(remote: Path, local: Path) -> None:
        runtime.get_file(str(remote), str(local))

    return send, fetch


def _fabric(connection: Any) -> tuple[Callable[[Path, Path], None], ...]:
    def send(local: Path, remote: Path) -> None:
        connection.put(str(local), str(remote))

    def fetch(remote: Path, local: Path) -> None:
        connection.get(str(remote), str(local))

    return send, fetch


def _sections(
    report: Report, title: str, unit: str, ways: list[Transfers], *, amount: float, megabytes: float
) -> None:
    """One section per direction: each way's rate (``amount`` per transfer, in ``unit``)."""
    for direction, call in (("sent", "send_file"), ("fetched", "get_file")):
        where = "to the host" if direction == "sent" else "from the host"
        section = report.section(f"{title}, {direction} {where}", unit, higher_is_better=True)
        for way in ways:
            seconds = getattr(way, direction)
            rates = [amount / value for value in seconds]
            note = (
                ""
                if unit == "MB/s"
                else f"{megabytes / sorted(seconds)[len(seconds) // 2]:.1f} MB/s"
            )
            label = f"{call}, {way.label}" if way.label else call
            section.add(way.name, rates, ours=way.ours, label=label if way.ours else "", note=note)


def _ways(
    bed: SshBed, runtime: Runtime, args: argparse.Namespace, fabric_connection: Any
) -> list[Transfers]:
    ways = [Transfers("ours", *_ours(runtime), ours=True), Transfers("scp", *_scp(bed))]
    if "legacy" not in args.skip:
        ways.append(Transfers("scp -O (legacy protocol)", *_scp(bed, "-O")))
    if fabric_connection is not None:
        ways.append(Transfers("fabric put/get (SFTP)", *_fabric(fabric_connection)))
    return ways


def bench_file(
    report: Report, bed: SshBed, runtime: Runtime, work: Path, args: argparse.Namespace
) -> None:
    """The 200 MB file, each way, every repetition."""
    source = work / "big.bin"
    make_file(source, FILE_BYTES)
    expected = manifest(source)
    connection: Any = None
    if "fabric" not in args.skip:
        import fabric

        connection = fabric.Connection("host-1", config=fabric_config(bed))
    ways = _ways(bed, runtime, args, connection)
    try:
        for _ in range(_repeats(args)):
            for way in ways:
                way.once(source, work, expected)
    finally:
        if connection is not None:
            connection.close()
    title = f"a {FILE_BYTES / MB:g} MB file"
    _sections(report, title, "MB/s", ways, amount=FILE_BYTES / MB, megabytes=0)
    section = report.sections[-2]
    section.add(
        "ssh host 'cat > file' (one stream)",
        [_cat_upload(bed, source, work)],
        reference=True,
        note="the single-stream ceiling",
    )
    source.unlink()


def _cat_upload(bed: SshBed, source: Path, work: Path) -> float:
    target = work / "cat-copy.bin"
    with source.open("rb") as data:
        started = time.perf_counter()
        subprocess.run(
            ssh_argv(bed, "host-1", f"cat > {target}"), stdin=data, check=True, timeout=300
        )
        seconds = time.perf_counter() - started
    _check("ssh cat", "sent", target, manifest(source))
    target.unlink()
    return FILE_BYTES / MB / seconds


def bench_tree(
    report: Report, bed: SshBed, runtime: Runtime, work: Path, args: argparse.Namespace
) -> None:
    """The folder of 2,000 small files, each way, every repetition."""
    source = work / "tree"
    total = make_tree(source, TREE_FILES)
    expected = manifest(source)
    ways = _ways(bed, runtime, args, None)
    for _ in range(_repeats(args)):
        for way in ways:
            way.once(source, work, expected)
    title = f"a folder of {TREE_FILES:,} files of 2-8 KB ({total / MB:.1f} MB)"
    _sections(report, title, "files/s", ways, amount=TREE_FILES, megabytes=total / MB)
    shutil.rmtree(source)


def _repeats(args: argparse.Namespace) -> int:
    return 1 if args.quick else 5 if args.full else 3


def _targets(report: Report) -> None:
    for section in report.sections:
        ours = next((row for row in section.rows if row.ours), None)
        scp = next((row for row in section.rows if row.name == "scp"), None)
        if ours is not None and scp is not None:
            ratio = section.advantage(ours, scp)
            report.target(f"{section.title}: ours / scp", ratio, "at least 0.9x", ratio >= 0.9)


def main() -> None:
    """Run every part not skipped; print the report; write the JSON if asked."""
    args = _benchlib.bench_arguments(__doc__.splitlines()[0])
    if args.quick:
        _benchlib.shrink(globals(), FILE_BYTES=2 * 1000 * 1000, TREE_FILES=20)
    _benchlib.quiet_logging()
    report = Report("bench_transfer.py", notes=environment_notes())
    print("\n".join(report.notes), flush=True)
    with ssh_bed(1) as bed, tempfile.TemporaryDirectory(prefix="acbench-xfer-") as folder:
        work = Path(folder)
        with Runtime("host-1", connection_kwargs=bed.connection_kwargs) as runtime:
            if "file" not in args.skip:
                bench_file(report, bed, runtime, work, args)
            if "tree" not in args.skip:
                bench_tree(report, bed, runtime, work, args)
    _targets(report)
    print()
    print(report.render())
    report.write_json(args.json)


if __name__ == "__main__":
    main()
