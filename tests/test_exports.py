"""The public API is declared once: every package's __all__ names exist, once each."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import actorcluster

PACKAGES = sorted(
    {"actorcluster"}
    | {
        module.name
        for module in pkgutil.walk_packages(actorcluster.__path__, "actorcluster.")
        if module.ispkg
    }
)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_exists_and_is_listed_once(name):
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", [])
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    for attribute in exported:
        assert hasattr(package, attribute), f"{name}.__all__ names missing {attribute}"


def test_lazyclusters_names_are_at_the_top_level():
    for name in (
        "Runtime",
        "RuntimeTask",
        "LazyclusterError",
        "TaskExecutionError",
        "InvalidRuntimeError",
        "PathCreationError",
        "PortInUseError",
        "NoPortsLeftError",
        "MasterStartError",
    ):
        assert name in actorcluster.__all__


def test_every_public_top_level_name_has_a_docstring():
    for name in actorcluster.__all__:
        assert getattr(actorcluster, name).__doc__, f"{name} has no docstring"


def test_every_error_is_exported_at_the_top_level():
    from actorcluster import errors

    assert set(errors.__all__) <= set(actorcluster.__all__)
