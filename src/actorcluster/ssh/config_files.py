"""Reading ssh_config files as OpenSSH does, ``Include`` and all: :func:`load_config`,
:func:`config_hosts`.

paramiko's ``SSHConfig`` does not follow ``Include``. Here each file is expanded before
paramiko parses it, with OpenSSH's rules (``ssh_config(5)``): every argument is a path,
``~`` expanded, relative ones taken from ``~/.ssh``, glob wildcards expanded in lexical
order, missing files skipped, at most 16 levels deep. An ``Include`` inside a ``Host`` or
``Match`` block is conditional: the included file's own ``Host``/``Match`` blocks apply
only where the enclosing block does, which is written for paramiko as one ``Match``
with both conditions (``Host a`` around ``Host b`` becomes ``Match originalhost a
originalhost b``). After the included file the enclosing block is in force again.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
from dataclasses import dataclass, field

import paramiko

from actorcluster.errors import ConfigurationError
from actorcluster.ssh._paramiko import enable_match_exec

__all__ = ["CONFIG_ENV_VAR", "config_hosts", "config_path", "load_config"]

CONFIG_ENV_VAR = "ACTORCLUSTER_SSH_CONFIG"
"""Environment variable naming the ssh_config file to read instead of ~/.ssh/config."""

_DEFAULT_CONFIG = "~/.ssh/config"
_MAX_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
_LINE = re.compile(r"(\w+)(?:\s*=\s*|\s+)(.+)")  # paramiko's SETTINGS_REGEX
_MATCH_EXEC = re.compile(r"\s*match\b.*\bexec\b", re.IGNORECASE)
"""A ``Match exec`` line (paramiko runs those with ``invoke``, imported only then)."""
_WILDCARDS = frozenset("*?!")


def config_path(path: str | None = None) -> tuple[str | None, str]:
    """The ssh_config file to read and where that choice came from.

    ``path`` if given, else ``$ACTORCLUSTER_SSH_CONFIG``, else ``~/.ssh/config`` if it
    exists; None when there is none (an empty configuration).
    """
    if path is not None:
        return os.path.expanduser(path), "ssh_config_path"
    if os.environ.get(CONFIG_ENV_VAR):
        return os.path.expanduser(os.environ[CONFIG_ENV_VAR]), CONFIG_ENV_VAR
    default = os.path.expanduser(_DEFAULT_CONFIG)
    return (default, "default ssh_config") if os.path.isfile(default) else (None, "")


def load_config(path: str | None = None) -> paramiko.SSHConfig:
    """Parse the ssh_config file to use (see :func:`config_path`), includes expanded.

    Raises:
        ConfigurationError: the file (or an included one) cannot be read or parsed, or
            includes nest deeper than 16 levels.
    """
    return _read(path)[0]


def config_hosts(path: str | None = None) -> list[str]:
    """The concrete host names of the ssh_config file's ``Host`` lines (included files
    too), in order, each once. Patterns (``*``, ``?``, ``!name``) are not hosts; a name
    in an included file under ``Host`` patterns it does not match is never configured,
    so it is left out, as are names under a ``Match`` block.

    Raises:
        ConfigurationError: as :func:`load_config`.
    """
    return _read(path)[1]


def _read(path: str | None) -> tuple[paramiko.SSHConfig, list[str]]:
    chosen, source = config_path(path)
    config = paramiko.SSHConfig()
    if chosen is None:
        return config, []
    expansion = _Expansion()
    try:
        expansion.file(chosen, depth=0, outer=None)
        config.parse(iter(expansion.lines))
        if any(_MATCH_EXEC.match(line) for line in expansion.lines):
            enable_match_exec()
    except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as exc:
        raise ConfigurationError(f"cannot read ssh_config {chosen!r} ({source}): {exc}") from exc
    return config, list(dict.fromkeys(expansion.hosts))


@dataclass
class _Outer:
    """The condition an enclosing ``Host``/``Match`` block puts on an included file."""

    criteria: list[str]
    """``Match`` criteria tokens, all of which must hold."""
    host_patterns: list[str] | None = None
    """The enclosing ``Host`` patterns, when that is all the condition is."""


@dataclass
class _Expansion:
    """The lines of a config with every ``Include`` replaced by what it includes."""

    lines: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    def file(self, path: str, *, depth: int, outer: _Outer | None) -> None:
        """Append the lines of ``path`` (includes expanded) under condition ``outer``."""
        if depth > _MAX_DEPTH:
            raise ConfigurationError(f"ssh_config includes nest deeper than {_MAX_DEPTH}: {path}")
        with open(path, encoding="utf-8") as file:
            text = file.read()
        header: str | None = None  # the block in force now (its line), None: the file's start
        inner: _Outer | None = outer  # the condition an Include here inherits
        for raw in text.splitlines():
            line = raw.strip()
            match = _LINE.match(line) if line and not line.startswith("#") else None
            if match is None:
                self.lines.append(line)  # blank, comment, or left for paramiko to reject
                continue
            key, value = match.group(1).lower(), match.group(2).strip()
            if key == "include":
                self._include(value, depth, inner, header or self._restore(outer))
            elif key in ("host", "match"):
                header, inner = self._block(key, value, outer)
                self.lines.append(header)
            else:
                self.lines.append(line)

    def _include(self, value: str, depth: int, outer: _Outer | None, restore: str) -> None:
        """Expand one ``Include`` line. Each included file starts, and the including one
        goes on, in the block of the ``Include`` line (``restore`` puts it back)."""
        try:
            arguments = shlex.split(value)
        except ValueError as exc:
            raise ConfigurationError(f"ssh_config: invalid Include {value!r}: {exc}") from exc
        files = []
        for argument in arguments:
            pattern = os.path.expanduser(argument)
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
            files += [found for found in sorted(glob.glob(pattern)) if os.path.isfile(found)]
        for found in files:
            before = len(self.lines)
            self.file(found, depth=depth + 1, outer=outer)
            if any(_is_header(line) for line in self.lines[before:]):
                self.lines.append(restore)

    def _block(self, key: str, value: str, outer: _Outer | None) -> tuple[str, _Outer | None]:
        """The paramiko line for a ``Host``/``Match`` line under ``outer``, and the
        condition its own includes inherit."""
        try:
            tokens = shlex.split(value)
        except ValueError as exc:
            raise ConfigurationError(f"ssh_config: invalid {key} line {value!r}: {exc}") from exc
        if key == "host":
            self._record_hosts(tokens, outer)
            own = ["originalhost", ",".join(tokens)]
            if outer is None:
                inherited = None if tokens == ["*"] else _Outer(own, host_patterns=tokens)
                return f"Host {value}", inherited
            criteria = [*outer.criteria, *own]
        else:
            own = [token for token in tokens if token.lower() != "all"]
            if outer is None:
                return f"Match {value}", (_Outer(own) if own else None)
            criteria = [*outer.criteria, *own]
        return f"Match {shlex.join(criteria)}", _Outer(criteria)

    def _record_hosts(self, patterns: list[str], outer: _Outer | None) -> None:
        for name in patterns:
            if _WILDCARDS & set(name):
                continue
            if outer is None or (
                outer.host_patterns is not None and _matches(outer.host_patterns, name)
            ):
                self.hosts.append(name)

    @staticmethod
    def _restore(outer: _Outer | None) -> str:
        """The line that puts the included file's own condition back in force."""
        return "Host *" if outer is None else f"Match {shlex.join(outer.criteria)}"


def _is_header(line: str) -> bool:
    match = _LINE.match(line)
    return match is not None and match.group(1).lower() in ("host", "match")


def _matches(patterns: list[str], name: str) -> bool:
    """OpenSSH's pattern-list match: some positive pattern matches and no negated one."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(name, pattern[1:]):
                return False
        elif fnmatch.fnmatchcase(name, pattern):
            matched = True
    return matched
