"""A task's execution log: one entry per executed step, that step's output.

:class:`ExecutionLog` is the live list lazycluster users read (``task.execution_log``):
a ``list`` of strings that grows while the task runs. Output arrives in pieces (64 KiB
frames of a command printing gigabytes), so a piece is kept as it came, in O(1), and
the step's entry is joined only when someone reads it: a command's output costs its
size once, however it is split, never the quadratic ``entry += piece``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ExecutionLog"]


class ExecutionLog(list[str]):
    """The live execution log of a task (a ``list`` of one string per step).

    The engine adds steps and output; readers get the entries as strings. Reading while
    a step streams output joins what came so far (each read costs the entry's size).
    """

    def __init__(self) -> None:
        super().__init__()
        self._pieces: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    # --- written by the engine (the task's actor) ---------------------------------

    def start_step(self) -> int:
        """Add an empty entry for the next step; its index."""
        with self._lock:
            super().append("")
            return super().__len__() - 1

    def add(self, index: int, text: str) -> None:
        """Add a piece of step ``index``'s output."""
        with self._lock:
            pieces = self._pieces.get(index)
            if pieces is None:
                self._pieces[index] = [text]
            else:
                pieces.append(text)

    def pieces(self, index: int) -> list[str]:
        """Step ``index``'s entry as pieces (nothing joined: for writing it out)."""
        with self._lock:
            entry = super().__getitem__(index)
            pieces = list(self._pieces.get(index, ()))
            return [entry, *pieces] if entry else pieces

    def _join(self) -> None:
        """Make every entry whole (with the lock held)."""
        for index, pieces in self._pieces.items():
            super().__setitem__(index, super().__getitem__(index) + "".join(pieces))
        self._pieces.clear()

    def _whole(self) -> list[str]:
        with self._lock:
            self._join()
            return list(super().__iter__())

    # --- read by users: every read sees whole entries -------------------------------

    @overload
    def __getitem__(self, index: SupportsIndex) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> str | list[str]:
        return self._whole()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._whole())

    def __len__(self) -> int:
        return super().__len__()

    def __contains__(self, item: object) -> bool:
        return item in self._whole()

    def __eq__(self, other: object) -> bool:
        return self._whole() == other

    def __ne__(self, other: object) -> bool:
        return self._whole() != other

    __hash__ = None  # a list is unhashable

    def __repr__(self) -> str:
        return repr(self._whole())

    def __str__(self) -> str:
        return str(self._whole())

    def copy(self) -> list[str]:
        """A plain list of the entries as they are now."""
        return self._whole()

    def index(self, value: Any, start: SupportsIndex = 0, stop: SupportsIndex = 2**63 - 1) -> int:
        """The first index of ``value``."""
        return self._whole().index(value, start, stop)

    def count(self, value: Any) -> int:
        """How many entries equal ``value``."""
        return self._whole().count(value)
