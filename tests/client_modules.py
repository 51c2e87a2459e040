"""Modules that exist only on the client: written into a folder that is put on the
test process's ``sys.path`` (never on an agent's: a localhost agent is a subprocess
with a ``sys.path`` of its own, an sshd host's agent starts in its home folder)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import shutil
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["client_path", "compiled_module", "distribution", "write_tree"]


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    """Write each ``relative path -> source`` under ``root`` (dedented)."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")


def distribution(root: Path, name: str, version: str) -> None:
    """An installed distribution's metadata for top-level module ``name``."""
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}\n")


def compiled_module(path_without_suffix: Path) -> Path:
    """A compiled extension module's file at ``path_without_suffix`` (a copy of one of
    the interpreter's own: it is never loaded, only found)."""
    dynload = Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload"
    source = next(dynload.glob("_json*.so"))
    target = path_without_suffix.with_name(
        path_without_suffix.name + importlib.machinery.EXTENSION_SUFFIXES[0]
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@contextlib.contextmanager
def client_path(root: Path) -> Iterator[Path]:
    """``root`` first on this process's ``sys.path`` while the block runs; afterwards
    every module imported from it is forgotten."""
    entry = str(root)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(entry):
                del sys.modules[name]
        importlib.invalidate_caches()
