"""What an agent's start costs the client and the host: the compiled modules kept in the
user's cache folder between processes, and a version manager's shim passed over for
the interpreter it would run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from actorcluster.remote import bootstrap, stage_cache

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "actorcluster"


def test_a_result_is_built_once_then_read_from_the_cache_folder(cache_home):
    builds = []

    def build():
        builds.append(1)
        return b"compiled"

    assert stage_cache.cached(b"key", build) == b"compiled"
    assert stage_cache.cached(b"key", build) == b"compiled"
    assert builds == [1]
    (path,) = cache_home.iterdir()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(cache_home.stat().st_mode & 0o777) == "0o700"


def test_a_damaged_file_is_built_again(cache_home):
    stage_cache.cached(b"key", lambda: b"compiled")
    (path,) = cache_home.iterdir()
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    assert stage_cache.cached(b"key", lambda: b"rebuilt") == b"rebuilt"
    assert stage_cache.cached(b"key", lambda: b"not again") == b"rebuilt"


def test_only_the_newest_files_are_kept(cache_home):
    for number in range(stage_cache.KEPT + 3):
        stage_cache.cached(b"key %d" % number, lambda: b"x")
        for path in cache_home.iterdir():  # older mtimes for the ones written before
            os.utime(path, (path.stat().st_mtime - 10,) * 2)
    assert len(list(cache_home.iterdir())) == stage_cache.KEPT


def test_an_unwritable_cache_folder_only_means_building(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert stage_cache.cached(b"key", lambda: b"built") == b"built"


def test_the_second_stage_is_the_same_read_from_the_cache(cache_home):
    bootstrap.stage_two.cache_clear()
    try:
        built = bootstrap.stage_two().wire_bytes()
        bootstrap.stage_two.cache_clear()
        assert list(cache_home.iterdir())
        assert bootstrap.stage_two().wire_bytes() == built
    finally:
        bootstrap.stage_two.cache_clear()


def _python_named(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(sys.executable)
    return folder / name


def _shim(folder, name, log):
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / name
    shim.write_text(f'#!/bin/sh\necho shim >> {log}\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    return shim


def _chosen(tmp_path, path_dirs):
    """Run the host's interpreter choice with only ``path_dirs`` on PATH, home here."""
    env = {"PATH": os.pathsep.join(map(str, path_dirs)), "HOME": str(tmp_path)}
    probe = bootstrap._python_exec(None, "import sys; print(sys.executable)")
    return subprocess.run(
        ["/bin/sh", "-c", probe], env=env, capture_output=True, timeout=30, check=True
    )


def test_a_shim_on_path_is_passed_over_for_the_install_it_would_run(tmp_path):
    name = "python{}.{}".format(*sys.version_info[:2])
    log = tmp_path / "shim.log"
    shims = tmp_path / ".pyenv" / "shims"
    _shim(shims, name, log)
    version = "{}.{}.99".format(*sys.version_info[:2])
    real = _python_named(tmp_path / ".pyenv" / "versions" / version / "bin", name)
    result = _chosen(tmp_path, [shims])
    assert not log.exists()
    assert result.stdout.decode().strip() == str(real)


def test_a_shim_is_used_when_no_real_interpreter_of_the_version_is_found(tmp_path):
    name = "python{}.{}".format(*sys.version_info[:2])
    log = tmp_path / "shim.log"
    shims = tmp_path / "asdf" / "shims"
    _shim(shims, name, log)
    _chosen(tmp_path, [shims])
    assert log.read_text() == "shim\n"


def test_a_file_others_may_write_is_not_used(cache_home):
    stage_cache.cached(b"key", lambda: b"compiled")
    (path,) = cache_home.iterdir()
    path.chmod(0o622)
    assert stage_cache.cached(b"key", lambda: b"rebuilt") == b"rebuilt"
    cache_home.chmod(0o777)
    assert stage_cache.cached(b"key", lambda: b"again") == b"again"
