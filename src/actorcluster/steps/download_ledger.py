"""Partial downloads on the client are ledgered, so a client killed mid-download
leaves no ``.part`` behind for good.

A download lands through a temporary ``.<name>.<random>.part`` beside its target (see
:mod:`actorcluster.remote.agent.landing`). A client that is SIGKILLed mid-download
cannot remove it; so each one is noted in this process's ledger, the same ledger the
agent keeps on a host (:mod:`actorcluster.remote.agent.partials`:
``~/.cache/actorcluster/partials/<pid>-<start time>``, private). The next client's
first download here (and any agent starting on this machine, the localhost runtime's
included) sweeps the ledgers of processes that no longer run and removes the partial
paths they list. A process that ends cleanly removes its ledger. Private temporary folders of the
client (a cluster's TLS key) are ledgered the same way (:func:`note_folder`).
"""

from __future__ import annotations

import atexit
import threading

from actorcluster.remote.agent import partials

__all__ = ["note", "note_folder", "sweep_once"]

_swept: set[str] = set()
"""The ledger folders swept by this process (once each)."""
_lock = threading.Lock()


def note(path: str, started: bool) -> None:
    """A download's temporary path begins to exist (``started``), or is gone."""
    partials.note(path, started)


def note_folder(path: str) -> None:
    """A private temporary folder of this process (0700, ours), such as a cluster's TLS
    files: removed by the next sweep if this process dies without removing it."""
    partials.note_temp_dir(path)


def sweep_once() -> None:
    """Sweep the ledgers of dead clients and agents, once per process and ledger folder
    (cheap: one folder listing), and remove this process's ledger at exit."""
    folder = partials.ledger_dir()
    if folder in _swept:
        return
    with _lock:
        if folder in _swept:
            return
        if not _swept:
            atexit.register(partials.forget)
        _swept.add(folder)
    partials.sweep()
