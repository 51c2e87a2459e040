"""Module shipping across faults: a module the host asked for while the connection
dropped arrives after the re-attach, and the function that imports it completes."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

from actorcluster import Runtime
from client_modules import client_path, write_tree
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from pathlib import Path
    from types import ModuleType

pytestmark = pytest.mark.slow

FAST = {"heartbeat_interval": 0.5, "heartbeat_timeout": 2.0, "session_grace": 15.0}


class _SlowLookup:
    """A finder on the client that holds the lookup of one module until released (a
    slow file system, say), then lets the usual finders find it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked = threading.Event()
        self.release = threading.Event()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == self.name:
            self.asked.set()
            self.release.wait(30)
        return None


@pytest.fixture
def slow_lookup(tmp_path: Path) -> Iterator[_SlowLookup]:
    finder = _SlowLookup("slowpkg")
    with client_path(tmp_path / "client") as root:
        write_tree(
            root,
            {"slowpkg/__init__.py": "from .part import VALUE\n", "slowpkg/part.py": "VALUE = 9\n"},
        )
        sys.meta_path.insert(0, finder)
        try:
            yield finder
        finally:
            finder.release.set()
            sys.meta_path.remove(finder)


def test_a_module_answered_while_the_connection_dropped_arrives_after_the_reattach(
    make_ssh_bed: Any, slow_lookup: _SlowLookup
) -> None:
    bed = make_ssh_bed(1)
    sshd = bed.hosts[0]

    def use() -> int:
        import slowpkg

        return int(slowpkg.VALUE) * 2

    with Runtime("host-1", connection_kwargs={**bed.connection_kwargs, **FAST}) as runtime:
        task = runtime.execute_function(use, execute_async=True)
        assert slow_lookup.asked.wait(20), "the host never asked for the module"
        assert sshd.kill_sshd_sessions()
        slow_lookup.release.set()  # the answer goes out on a dead or missing stream
        wait_until(lambda: runtime._handle.context.reattaches >= 1, 20, "the session re-attached")
        task.join()
        assert list(task.function_returns) == [18]
