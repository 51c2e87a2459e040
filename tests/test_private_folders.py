"""The folders actorcluster makes in a home are private: ``~/.local/state/actorcluster``
(execution logs, on the client) and ``~/.cache/actorcluster`` (the agent's ledger, on
the host) are created 0700 (``makedirs`` made the middle one 0755), and one an older
version left readable is closed."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from actorcluster import Runtime, RuntimeTask

if TYPE_CHECKING:
    from pathlib import Path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("older", [False, True])
def test_state_and_cache_folders_are_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, older: bool
) -> None:
    state, cache = tmp_path / "state", tmp_path / "cache"
    if older:  # as an older version left them
        (state / "actorcluster").mkdir(parents=True, mode=0o755)
        (cache / "actorcluster").mkdir(parents=True, mode=0o755)
        os.chmod(state / "actorcluster", 0o755)
        os.chmod(cache / "actorcluster", 0o755)
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("ACTORCLUSTER_LOG_DIR", raising=False)
    source = tmp_path / "sent.txt"
    source.write_text("data")
    rt = Runtime("localhost")
    try:
        task = RuntimeTask("private").run_command("echo hello").send_file(str(source))
        rt.execute_task(task, execute_async=False)
        assert "hello\n" in task.execution_log
        assert task.execution_log_file_path is not None
    finally:
        rt.cleanup()
    for folder in (state / "actorcluster", cache / "actorcluster"):
        assert folder.is_dir(), folder
        assert _mode(folder) == 0o700, f"{folder} is {_mode(folder):o}"
    assert _mode(state / "actorcluster" / "execution_log") == 0o700
    assert _mode(cache / "actorcluster" / "partials") == 0o700
