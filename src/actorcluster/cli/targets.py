"""Which hosts a command means: names, comma lists, patterns, or ``--all``."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from actorcluster.errors import UsageError
from actorcluster.ssh import config_hosts, config_path

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["is_pattern", "resolve_hosts"]

_PATTERN_CHARS = frozenset("*?[")


def is_pattern(word: str) -> bool:
    """Whether ``word`` is a shell-style pattern (``gpu-*``) rather than a name."""
    return any(char in _PATTERN_CHARS for char in word)


def _where(ssh_config: str | None) -> str:
    chosen, source = config_path(ssh_config)
    return f"ssh_config {chosen} ({source})" if chosen else "~/.ssh/config (there is none)"


def resolve_hosts(
    words: Sequence[str], ssh_config: str | None, *, every: bool = False
) -> list[str]:
    """The hosts ``words`` name, in order, each once.

    Each word is a host name, a comma-separated list of them, or a pattern matched
    against the ssh_config's ``Host`` names; ``every`` adds all of those.

    Raises:
        UsageError: no host given, or a pattern (or ``every``) matches no host.
        ConfigurationError: the ssh_config cannot be read.
    """
    names = [name.strip() for word in words for name in word.split(",") if name.strip()]
    known: list[str] | None = None
    hosts: list[str] = []
    if every or any(is_pattern(name) for name in names):
        known = config_hosts(ssh_config)
    if every:
        assert known is not None
        if not known:
            raise UsageError(
                f"there is no Host entry in {_where(ssh_config)}: name hosts, or point "
                "--ssh-config (or $ACTORCLUSTER_SSH_CONFIG) at an ssh_config"
            )
        hosts += known
    for name in names:
        if not is_pattern(name):
            hosts.append(name)
            continue
        assert known is not None
        matched = [host for host in known if fnmatch.fnmatchcase(host, name)]
        if not matched:
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") or "none"
            raise UsageError(
                f"no host matches {name!r} in {_where(ssh_config)}; its hosts: {shown}"
            )
        hosts += matched
    if not hosts:
        raise UsageError("no host given: name one or more (or a pattern such as 'gpu-*', or --all)")
    return list(dict.fromkeys(hosts))
