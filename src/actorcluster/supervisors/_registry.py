"""pykka's actor registry with constant-time membership and removal.

``pykka.ActorRegistry`` keeps every running actor's ref in a list, and each actor's
stop does ``ref in refs`` and ``refs.remove(ref)``: two scans of every live actor. With
an actor per running task and thousands of tasks in flight, those scans were most of
a task's cost on the client. :func:`install` swaps that list for a :class:`RefTable`
(an insertion-ordered dict by identity with the list operations pykka uses), so the
registry's API (``get_all`` in start order, ``get_by_urn``, ``stop_all``) is unchanged.
If pykka ever stops keeping a list there, nothing is swapped.

:func:`register` and :func:`unregister` are pykka's, without formatting the debug line
each writes ("Registered <ref>") while pykka's logger drops debug records: an actor per
task starts and stops thousands of times a second.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pykka

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["RefTable", "install", "register", "unregister"]

_pykka_log = logging.getLogger("pykka")
_REGISTRY: Any = pykka.ActorRegistry


class RefTable:
    """The list operations pykka's registry uses (``append``, ``in``, ``remove``,
    iteration, slicing), each in constant time but slicing and iteration, which copy."""

    __slots__ = ("_refs",)

    def __init__(self, refs: Iterable[pykka.ActorRef[Any]] = ()) -> None:
        self._refs: dict[int, pykka.ActorRef[Any]] = {id(ref): ref for ref in refs}

    def __repr__(self) -> str:
        return f"RefTable({list(self._refs.values())!r})"

    def append(self, ref: pykka.ActorRef[Any]) -> None:
        """Add ``ref`` (last in order)."""
        self._refs[id(ref)] = ref

    def remove(self, ref: pykka.ActorRef[Any]) -> None:
        """Remove ``ref``.

        Raises:
            ValueError: it is not here (as ``list.remove``).
        """
        if self._refs.get(id(ref)) is not ref:
            raise ValueError("ref not in the registry")
        del self._refs[id(ref)]

    def __contains__(self, ref: object) -> bool:
        return self._refs.get(id(ref)) is ref

    def __len__(self) -> int:
        return len(self._refs)

    def __iter__(self) -> Iterator[pykka.ActorRef[Any]]:
        return iter(list(self._refs.values()))  # a copy: the table may change meanwhile

    def __getitem__(self, index: Any) -> Any:
        return list(self._refs.values())[index]


def install() -> None:
    """Put a :class:`RefTable` in pykka's registry in place of its list (once)."""
    registry: Any = pykka.ActorRegistry
    with registry._actor_refs_lock:
        refs = registry._actor_refs
        if isinstance(refs, list):
            registry._actor_refs = RefTable(refs)


def _table() -> RefTable | None:
    """The installed table, if pykka's debug lines are off (else pykka's own calls)."""
    refs = _REGISTRY._actor_refs
    if isinstance(refs, RefTable) and not _pykka_log.isEnabledFor(logging.DEBUG):
        return refs
    return None


def register(ref: pykka.ActorRef[Any]) -> None:
    """``pykka.ActorRegistry.register(ref)``."""
    table = _table()
    if table is None:
        pykka.ActorRegistry.register(ref)
        return
    with _REGISTRY._actor_refs_lock:
        table.append(ref)


def unregister(ref: pykka.ActorRef[Any]) -> None:
    """``pykka.ActorRegistry.unregister(ref)``."""
    table = _table()
    if table is None:
        pykka.ActorRegistry.unregister(ref)
        return
    with _REGISTRY._actor_refs_lock:
        if ref in table:
            table.remove(ref)
