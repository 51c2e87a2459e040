"""Base classes: whose fault it is, and how a host's text is cut."""

from __future__ import annotations

from typing import Any

from actorcluster._limits import HOST_TEXT_SHOWN as _HOST_TEXT_SHOWN

__all__ = ["ActorClusterError", "LazyclusterError", "RemoteError"]


def _head(text: object, limit: int = _HOST_TEXT_SHOWN) -> str:
    """The start of a host's text, cut to ``limit`` characters (saying how much went)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def _tail(text: object, limit: int = _HOST_TEXT_SHOWN) -> str:
    """The end of a host's text, cut to ``limit`` characters (saying how much went)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters before]...{text[-limit:]}"


class ActorClusterError(Exception):
    """Base class of every error actorcluster raises (each pickles: see docs/reference/errors.md).

    Args:
        *args: the error's arguments, positional (its message is formatted from them).
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # OSError-derived subclasses would otherwise fold 2-3 args into errno/strerror.
        self.args = args

    def __str__(self) -> str:
        if not self.args:
            return self.__class__.__name__
        predecessor = self._given_predecessor()
        if predecessor is not None:  # lazycluster's LazyclusterError(msg, predecessor_excp)
            return f"{self.args[0]} Predecessor Exception: {predecessor}"
        return str(self.args[0])

    def _plain(self) -> bool:
        """Whether this class keeps lazycluster's plain ``(msg, predecessor_excp)``
        arguments (it formats no message of its own)."""
        return type(self).__str__ is ActorClusterError.__str__

    def _given_predecessor(self) -> BaseException | None:
        """The ``predecessor_excp`` given as second argument, lazycluster's way."""
        if self._plain() and len(self.args) > 1 and isinstance(self.args[1], BaseException):
            return self.args[1]
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.args == other.args

    def __hash__(self) -> int:
        return hash((type(self), self.args))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)

    @property
    def msg(self) -> str:
        """The message (lazycluster's attribute name): the one given to a plain
        ``LazyclusterError(msg, predecessor_excp)``, else the formatted message."""
        if self._plain() and self.args:
            return str(self.args[0])
        return str(self)

    @property
    def predecessor_excp(self) -> BaseException | None:
        """The exception given as lazycluster's ``predecessor_excp``, else the one this
        was raised from (``__cause__``), if any."""
        given = self._given_predecessor()
        return given if given is not None else self.__cause__


LazyclusterError = ActorClusterError
"""The name lazycluster's documentation uses for the base class."""


class RemoteError(ActorClusterError):
    """Something on or on the way to a host went wrong."""


class _HostReasonError(ActorClusterError):
    """An error about one host, with a reason in words: ``(host, reason, *more)``.

    Subclasses say what happened to the host in :attr:`_happened` (``{host}`` is
    replaced); the reason, when given, follows it after a colon.
    """

    _happened = "{host} failed"

    @property
    def host(self) -> str:
        """The host it happened to."""
        return str(self.args[0])

    def __str__(self) -> str:
        host, reason = self.args[:2]
        return self._happened.format(host=host) + (f": {reason}" if reason else "")
