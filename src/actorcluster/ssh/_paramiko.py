"""paramiko, imported without ``invoke`` until an ssh_config needs it.

``paramiko.config`` imports ``invoke`` (when installed) at import time, only to run
``Match exec`` commands; ``invoke`` brings ``unittest.mock``, ``asyncio``, ``ssl`` and a
YAML parser, a fifth of a cold command line's imports. :func:`import_paramiko` imports
paramiko with ``invoke`` kept out (paramiko then records it as not installed), and
:func:`enable_match_exec` hands it over when an ssh_config has a ``Match exec`` line
(:mod:`~actorcluster.ssh.config_files` asks for it after parsing one). Where paramiko or
``invoke`` was imported already, nothing changes. The package imports this module first,
so it runs before any other module here imports paramiko. (A thread of the application
importing ``invoke`` during those few milliseconds would see it missing.)
"""

from __future__ import annotations

import sys

__all__ = ["enable_match_exec", "import_paramiko"]

_INVOKE = "invoke"


def import_paramiko() -> None:
    """Import paramiko (once) without importing ``invoke``."""
    if "paramiko" in sys.modules:
        return
    kept_out = "invoke" not in sys.modules
    if kept_out:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # import invoke: ImportError
    try:
        import paramiko  # noqa: F401 - imported for its side effect: loaded once, here
    finally:
        if kept_out and sys.modules.get("invoke", ...) is None:
            del sys.modules["invoke"]


def enable_match_exec() -> None:
    """Give paramiko ``invoke`` (if installed), which its ``Match exec`` lines run on."""
    import paramiko.config

    if getattr(paramiko.config, _INVOKE, None) is not None:
        return
    try:
        import invoke  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # paramiko raises its own error when such a line is evaluated
        return
    setattr(paramiko.config, _INVOKE, invoke)


import_paramiko()  # on import: the package imports this module before any other
