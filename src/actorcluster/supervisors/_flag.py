"""A ``threading.Event`` at a fraction of its weight: :class:`Flag`.

Every actor carries three events (pykka's ``actor_stopped``, the pool's
``actor_finished``, the start link's ``started``), and a runtime may run thousands of
task actors a second. A ``threading.Event`` is a condition, a lock, a deque and five
bound methods: about a dozen objects the garbage collector then walks while the actor
lives. A :class:`Flag` is one small object. Setting and testing one take no lock; only
waiting does, on one condition shared by every flag, since waits are rare (a start, a
stop) and brief. A set wakes the waiters of every flag, each of which checks its own.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Flag"]


class _Waits:
    """The condition every flag's waiters share, and how many threads wait on it
    (changed only with the condition held)."""

    condition = threading.Condition(threading.Lock())
    count = 0


class Flag(threading.Event):
    """An event flag with ``threading.Event``'s methods (``set``, ``is_set``,
    ``clear``, ``wait``) that costs one object.

    It is an ``Event`` for whoever expects one (pykka's ``actor_stopped``), but shares
    none of its state: the base class's ``__init__`` is not called.
    """

    __slots__ = ("_is_set",)

    def __init__(self) -> None:  # no super().__init__(): that is the weight left out
        self._is_set = False

    def __repr__(self) -> str:
        return f"<Flag {'set' if self._is_set else 'unset'}>"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._is_set

    isSet = is_set  # noqa: N815 - threading.Event's old name

    def set(self) -> None:
        """Set the flag and wake whoever waits for it."""
        self._is_set = True
        # A waiter counts itself before it looks at its flag, with the condition held:
        # if none is counted now, any that comes later sees the flag set.
        if _Waits.count:
            with _Waits.condition:
                _Waits.condition.notify_all()

    def clear(self) -> None:
        """Unset the flag."""
        self._is_set = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set or ``timeout`` seconds passed; whether it is set."""
        if self._is_set:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        condition = _Waits.condition
        with condition:
            _Waits.count += 1
            try:
                while not self.is_set():  # (a call: mypy would take it as still False)
                    if deadline is None:
                        condition.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    condition.wait(left)
                return True
            finally:
                _Waits.count -= 1
