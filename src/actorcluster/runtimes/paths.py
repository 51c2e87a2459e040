"""Paths on a host as lazycluster's shell saw them: ``~`` and ``$VAR`` expanded.

lazycluster passed ``create_dir``'s path and the working directory through a shell
(``mkdir -p PATH``), so ``~`` and ``$HOME`` in them meant what they mean there. Here no
shell runs: :func:`expand_path` does the two expansions a path needs, with the
runtime's environment on the host, and nothing else. Spaces, quotes, backslashes,
``$(...)``, backticks and glob characters stay literal characters of the path; nothing
is ever executed.

The rules (POSIX ``sh`` for an unquoted word, without field splitting or globbing):

* a leading ``~`` up to the first ``/`` is a tilde prefix: ``~`` alone is ``$HOME``,
  ``~name`` is that user's home directory (unchanged if there is no such user);
* ``$NAME`` (the longest run of letters, digits and ``_`` after a letter or ``_``) and
  ``${NAME}`` are the variable's value, not expanded further;
* any other ``$`` is a literal ``$``.

A variable that is not set is an error rather than the empty string: ``"$UNSET/x"``
would otherwise become ``"/x"``, and ``delete_dir("$UNSET/")`` the root.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from actorcluster.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["expand_path", "host_environment_reader", "needs_expansion", "tilde_user"]

_VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
_USER_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*\$?")


def needs_expansion(path: str) -> bool:
    """Whether ``path`` holds a variable to expand (a ``~`` alone the agent expands)."""
    return _VARIABLE.search(path) is not None


def tilde_user(path: str) -> str | None:
    """The user a leading tilde prefix names (``""`` for the current one), or None
    when ``path`` has no tilde prefix to expand."""
    if not path.startswith("~"):
        return None
    name = path[1:].split("/", 1)[0]
    if name and not _USER_NAME.fullmatch(name):
        return None
    return name


def expand_path(
    path: str, env: Mapping[str, str], home_of: Callable[[str], str | None], host: str = ""
) -> str:
    """``path`` with its tilde prefix and its variables expanded (see the module).

    Args:
        path: the path as the user wrote it.
        env: the environment on the host (``HOME`` is the current user's home).
        home_of: the home directory of a user name, None if there is no such user.
        host: the runtime's host, for the error message.

    Raises:
        UsageError: a variable is not set in ``env`` (the message names it).
    """
    original, pieces = path, list[str]()
    user = tilde_user(path)
    if user is not None:
        home = env.get("HOME") if not user else None
        home = home if home is not None else home_of(user)
        if home is not None:  # the home directory is not expanded further
            pieces.append(home)
            path = path[1 + len(user) :]
    end = 0
    for match in _VARIABLE.finditer(path):
        name = match.group(1) or match.group(2)
        value = env.get(name)
        if value is None:
            where = f" on {host}" if host else ""
            raise UsageError(
                f"path {original!r} uses ${name}, which is not set{where}; set it with "
                f"add_env_variables() or write the path out"
            )
        pieces += [path[end : match.start()], value]
        end = match.end()
    pieces.append(path[end:])
    return "".join(pieces)


def host_environment_reader() -> Callable[[list[str]], tuple[dict[str, str], dict[str, str]]]:
    """A function to run on the host: its environment, and the home of each named user.

    It is built here so that cloudpickle ships it by value (the host has no
    actorcluster to import it from).
    """

    def read(users: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        import os
        import pwd

        homes: dict[str, str] = {}
        for user in users:
            try:
                entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
            except KeyError:
                continue
            homes[user] = entry.pw_dir
        return dict(os.environ), homes

    return read
