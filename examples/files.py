"""Files: send and fetch files and folders, with progress; they land all or nothing.

python examples/files.py [HOST]      (default: localhost)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from actorcluster import Runtime, RuntimeTask

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"


def report(done: int, total: int | None) -> None:
    """progress(done, total): bytes moved so far (total None for folders)."""
    if total and done == total:
        print(f"  {done} of {total} bytes")


with tempfile.TemporaryDirectory() as scratch, Runtime(host) as runtime:
    data = Path(scratch, "data")
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 4096)

    # A folder travels as one tar stream into the working directory (or remote_path).
    runtime.send_file(str(data), "data")
    # A file, with a progress callback (it runs on the task's actor: keep it short).
    runtime.send_file(str(data / "sub" / "b.bin"), "copy.bin", progress=report)
    listing = RuntimeTask("ls").run_command("find data copy.bin -type f | sort")
    print("on the host:", runtime.execute_task(listing, False).execution_log[0].split())

    # And back: a folder's content lands in the local folder given.
    back = Path(scratch, "back")
    runtime.get_file("data", str(back))
    same = (back / "sub" / "b.bin").read_bytes() == (data / "sub" / "b.bin").read_bytes()
    print("fetched back identical:", same)

    # Asynchronous transfers return the task; its future says when it landed.
    task = runtime.get_file("copy.bin", str(Path(scratch, "copy.bin")), execute_async=True)
    task.future.result(timeout=60)
    print("async fetch:", Path(scratch, "copy.bin").stat().st_size, "bytes")
