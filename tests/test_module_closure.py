"""Which modules travel with a shipped module (its import closure), read, never run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from actorcluster.remote import module_closure
from actorcluster.remote.module_closure import bundle_for, imported_names
from actorcluster.remote.module_lookup import ModulePolicy, answer_for
from client_modules import client_path, write_tree

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PACKAGE = {
    "closurepkg/__init__.py": """
        from . import alpha
        from .beta import VALUE
        import closurepkg.gamma.delta
        import json, os.path
        import closure_helper
        VALUE2 = VALUE
    """,
    "closurepkg/alpha.py": "from ..outside import x\nfrom . import *\n",
    "closurepkg/beta.py": "VALUE = 1\nfrom .never import y  # no such module: not sent\n",
    "closurepkg/gamma/__init__.py": "",
    "closurepkg/gamma/delta.py": "def late():\n    from closurepkg import epsilon\n",
    "closurepkg/epsilon.py": "E = 5\n",
    "closurepkg/unused.py": "U = 1\n",
    "closure_helper.py": "import closure_other\n",
    "closure_other.py": "OTHER = 1\n",
    "closure_secret.py": "S = 1\n",
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Path]:
    with client_path(tmp_path / "client") as root:
        write_tree(root, PACKAGE)
        yield root


def names(answers: list[dict[str, object]]) -> list[str]:
    return sorted(str(answer["name"]) for answer in answers)


def test_imports_are_read_absolute_and_relative() -> None:
    source = (
        b"import a.b.c\nfrom . import x\nfrom .y import z\nfrom .. import up\n"
        b"from ... import beyond\ndef f():\n    import later\n"
    )
    found = list(dict.fromkeys(imported_names("pkg.sub.mod", source, package=False)))
    assert found == [
        "a",
        "a.b",
        "a.b.c",
        "pkg",
        "pkg.sub",
        "pkg.sub.x",
        "pkg.sub.y",
        "pkg.sub.y.z",
        "pkg.up",
        "later",
    ]  # "from ... import" leaves the top package: ignored
    assert list(imported_names("m", b"this is not python", package=False)) == []


def test_a_package_travels_with_what_it_imports_and_nothing_else(client: Path) -> None:
    del client
    first = answer_for("closurepkg", ModulePolicy())
    assert first["found"]
    bundle = bundle_for(first, ModulePolicy())
    assert names(bundle) == [
        "closure_helper",  # the user's own top-level modules (not installed)
        "closure_other",
        "closurepkg.alpha",
        "closurepkg.beta",
        "closurepkg.epsilon",  # imported inside a function: may be needed, read too
        "closurepkg.gamma",
        "closurepkg.gamma.delta",
    ]  # not json/os (standard library), not unused.py, not what does not exist
    assert all(answer["source"] is not None for answer in bundle)


def test_exclusions_modules_sent_and_the_bounds_hold(
    client: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del client
    first = answer_for("closurepkg", ModulePolicy())
    excluded = bundle_for(first, ModulePolicy(exclude=("closurepkg.gamma", "closure_helper")))
    assert "closurepkg.gamma.delta" not in names(excluded)
    assert "closure_helper" not in names(excluded)
    assert "closure_other" not in names(excluded)  # only reached through the excluded one
    known = bundle_for(first, ModulePolicy(), sent={"closurepkg.alpha", "closure_other"})
    assert not {"closurepkg.alpha", "closure_other"} & set(names(known))
    monkeypatch.setattr(module_closure, "BUNDLE_MODULES", 2)
    assert len(bundle_for(first, ModulePolicy())) == 2
    monkeypatch.setattr(module_closure, "BUNDLE_MODULES", 256)
    monkeypatch.setattr(module_closure, "BUNDLE_BYTES", 40)
    assert sum(len(a["source"]) for a in bundle_for(first, ModulePolicy())) <= 40


def test_installed_packages_are_left_to_the_host() -> None:
    """An installed package (site-packages) imported by a shipped module is not bundled:
    the host most likely has its own (and would use it anyway)."""
    first = {"name": "mine", "found": True, "package": False, "source": b"import pykka\n"}
    assert "pykka" in sys.modules or answer_for("pykka", ModulePolicy())["found"]
    assert bundle_for(first, ModulePolicy()) == []
