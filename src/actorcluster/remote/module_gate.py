"""When a host may be sent a module at all: only while one of its function calls is in
flight, and never the client's main script.

Module shipping exists for one case: a function running on the host imports a module
the host lacks. So a MODULE request is answered only while a CALL to that host is in
flight; one from an agent that runs no function of ours (a hostile agent fishing for
the client's modules) is refused without a look at the module. The main script
(``__main__``, under that name or its own) is never sent: a function defined there
travels by value (cloudpickle), so the host never needs its source, and scripts are
where tokens get pasted. ``ship_modules=False`` and ``ship_modules_exclude`` narrow
this further (:mod:`actorcluster.remote.module_lookup`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from actorcluster.remote.module_lookup import valid_module_name

if TYPE_CHECKING:
    from actorcluster.remote.session import AgentSession

__all__ = ["gate_refusal"]

_NO_CALL = "no function call is in flight on the host: modules are sent only while one runs"
_MAIN = "the client's main script is not sent (a function defined there travels by value)"


def _main_file() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.realpath(path) if isinstance(path, str) else None


def _is_main_script(name: str) -> bool:
    """Whether ``name`` is the main script, by that name or its own (no import runs)."""
    if name == "__main__" or name.split(".", maxsplit=1)[0] == "__main__":
        return True
    main_file = _main_file()
    if main_file is None or "." in name:
        return False
    stem = os.path.splitext(os.path.basename(main_file))[0]
    return stem == name


def gate_refusal(name: object, session: AgentSession) -> dict[str, Any] | None:
    """The MODULE_SOURCE body refusing ``name`` for ``session`` now, or None if the
    module may be looked up (see the module docstring)."""
    shown = name if valid_module_name(name) else ""
    if session.calls_in_flight() == 0:
        return {"name": shown, "found": False, "refused": _NO_CALL}
    if isinstance(name, str) and _is_main_script(name):
        return {"name": shown, "found": False, "refused": _MAIN}
    return None
