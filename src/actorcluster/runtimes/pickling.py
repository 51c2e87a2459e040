"""Pickling functions for the host: the user's own code travels by value.

cloudpickle pickles a function from an importable module by reference (module and
name), so the host must be able to import that module. That holds for installed
packages, but not for the user's own scripts, test modules and project code, which
exist only here. Those modules are pickled by value instead; installed and standard
library modules keep travelling by reference.
"""

from __future__ import annotations

import functools
import sys
import sysconfig
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["dumps_call"]

_lock = threading.Lock()


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(str(Path(root).resolve()) for root in roots)


def _is_local_module(module: ModuleType) -> bool:
    name = module.__name__
    if name == "__main__" or name.split(".")[0] in ("actorcluster", "cloudpickle"):
        return False
    file = getattr(module, "__file__", None)
    if not file:
        return False
    resolved = str(Path(file).resolve())
    return not any(resolved.startswith(root + "/") for root in _installed_roots())


def _modules_of(function: Any) -> set[ModuleType]:
    candidates: list[Any] = [function]
    if isinstance(function, functools.partial):
        candidates.append(function.func)
    bound_to = getattr(function, "__self__", None)
    if bound_to is not None:
        candidates.append(type(bound_to))
    if not hasattr(function, "__code__"):
        candidates.append(type(function))
    modules = set()
    for candidate in candidates:
        module = sys.modules.get(getattr(candidate, "__module__", None) or "")
        if module is not None and _is_local_module(module):
            modules.add(module)
    return modules


def dumps_call(function: Any, kwargs: dict[str, Any]) -> bytes:
    """``cloudpickle.dumps((function, kwargs))``, with the user's own modules by value."""
    import cloudpickle  # here: a program that calls no function remotely is spared it

    modules = _modules_of(function)
    with _lock:
        for module in modules:
            cloudpickle.register_pickle_by_value(module)
        try:
            return cloudpickle.dumps((function, kwargs))  # type: ignore[no-any-return]
        finally:
            for module in modules:
                cloudpickle.unregister_pickle_by_value(module)
