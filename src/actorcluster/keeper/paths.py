"""Where the keeper lives and which calls it may serve (standard library only).

The keeper of a user listens on a Unix socket in a private folder: ``$ACTORCLUSTER_KEEPER_DIR``
if set (tests), else ``$XDG_RUNTIME_DIR/actorcluster``, else ``/tmp/actorcluster-UID``.
The folder must be ours, a real folder (no link) and closed to everyone else (0700); one
that is not is refused, and the call goes direct.

A keeper serves only calls that would connect the same way: its socket's name is a hash
of the ssh_config (its path and its content, with the files it includes), the environment
that connecting or printing reads (``HOME``, ``SSH_AUTH_SOCK``, ``PATH``, the terminal and
locale variables, every ``ACTORCLUSTER_*``), and the package and interpreter serving it. A
call made with another ssh_config (or after it changed) finds no keeper for it and starts
its own; the old keeper, finding its ssh_config changed, exits.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = [
    "KEEPER_COMMANDS",
    "Call",
    "config_digest",
    "config_file",
    "identity",
    "idle_seconds",
    "keeper_allowed",
    "keeper_dir",
    "keeper_wanted",
    "parse_call",
    "socket_path",
]

DIR_ENV = "ACTORCLUSTER_KEEPER_DIR"
"""The keeper's folder, instead of the per-user runtime folder (tests)."""
ENABLE_ENV = "ACTORCLUSTER_KEEPER"
"""``0`` (or ``no``, ``off``, ``false``): never use a keeper."""
IDLE_ENV = "ACTORCLUSTER_KEEPER_IDLE"
"""Seconds a keeper with nothing to do waits before it exits (default 300)."""
KEEPER_COMMANDS = frozenset({"run", "put", "get", "info", "hosts"})
"""The commands a keeper serves (the others always run here)."""
_ENV_KEYS = (
    "HOME",
    "USER",
    "LOGNAME",
    "SSH_AUTH_SOCK",
    "PATH",
    "TERM",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "COLORTERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONPATH",
)
"""What connecting and printing read from the environment: part of a keeper's identity."""
_OWN_KEYS = (DIR_ENV, ENABLE_ENV, IDLE_ENV)
_GLOBAL_VALUE_OPTIONS = ("--ssh-config", "--connect-timeout")


class Call:
    """A command line call as the keeper client sees it (a plain class: a named tuple
    would cost every call through the keeper more than the rest of this module)."""

    __slots__ = ("command", "direct_only", "no_keeper", "ssh_config")

    def __init__(
        self, command: str | None, ssh_config: str | None, no_keeper: bool, direct_only: bool
    ) -> None:
        self.command = command
        """The command's name (None: none given)."""
        self.ssh_config = ssh_config
        """``--ssh-config``'s value, if given."""
        self.no_keeper = no_keeper
        """``--no-keeper`` was given."""
        self.direct_only = direct_only
        """An option the keeper does not serve (logging, help, version, an unknown one)."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Call):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Call(command={!r}, ssh_config={!r}, no_keeper={!r}, direct_only={!r})".format(
            *self._fields()
        )

    def _fields(self) -> tuple[str | None, str | None, bool, bool]:
        return (self.command, self.ssh_config, self.no_keeper, self.direct_only)


def parse_call(argv: Sequence[str]) -> Call:
    """The global options and the command of ``argv``, read without click."""
    ssh_config: str | None = None
    no_keeper = False
    words = list(argv)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--no-keeper":
            no_keeper = True
        elif word in _GLOBAL_VALUE_OPTIONS:
            if index + 1 >= len(words):
                return Call(None, ssh_config, no_keeper, True)
            if word == "--ssh-config":
                ssh_config = words[index + 1]
            index += 1
        elif word.startswith(tuple(f"{option}=" for option in _GLOBAL_VALUE_OPTIONS)):
            if word.startswith("--ssh-config="):
                ssh_config = word.split("=", 1)[1]
        elif word.startswith("-"):
            return Call(None, ssh_config, no_keeper, True)
        else:
            rest = words[index + 1 :]
            before = rest[: rest.index("--")] if "--" in rest else rest
            helped = any(arg in ("-h", "--help") for arg in before)
            return Call(word, ssh_config, no_keeper, helped)
        index += 1
    return Call(None, ssh_config, no_keeper, True)


def keeper_allowed(environ: dict[str, str] | None = None) -> bool:
    """Whether keepers may be used at all (``$ACTORCLUSTER_KEEPER`` does not say no)."""
    env = os.environ if environ is None else environ
    return env.get(ENABLE_ENV, "1").strip().lower() not in ("0", "no", "off", "false")


def keeper_wanted(call: Call, environ: dict[str, str] | None = None) -> bool:
    """Whether ``call`` may go through a keeper."""
    if not keeper_allowed(environ):
        return False
    return call.command in KEEPER_COMMANDS and not call.no_keeper and not call.direct_only


def keeper_dir(create: bool = True) -> str | None:
    """The user's private keeper folder (made 0700 if missing); None when it cannot be
    made, or is not ours alone (then no keeper is used)."""
    chosen = os.environ.get(DIR_ENV)
    if not chosen:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and _private(runtime):
            chosen = os.path.join(runtime, "actorcluster")
        else:
            chosen = os.path.join("/tmp", f"actorcluster-{os.getuid()}")
    if create:
        try:
            os.mkdir(chosen, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    return chosen if _private(chosen) else None


def _private(folder: str) -> bool:
    """A real folder (not a link) of ours that nobody else may enter."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def config_file(ssh_config: str | None, environ: dict[str, str] | None = None) -> str:
    """The ssh_config file a call reads, as an absolute path (it may not exist)."""
    env = os.environ if environ is None else environ
    chosen = ssh_config or env.get("ACTORCLUSTER_SSH_CONFIG") or "~/.ssh/config"
    return os.path.abspath(os.path.expanduser(chosen))


_KNOWN_HOSTS_DEFAULTS = (
    "~/.ssh/known_hosts",
    "~/.ssh/known_hosts2",
    "/etc/ssh/ssh_known_hosts",
    "/etc/ssh/ssh_known_hosts2",
)
_KNOWN_HOSTS_KEYS = ("userknownhostsfile", "globalknownhostsfile")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b"\0missing"


def _settings(text: bytes) -> list[tuple[str, list[str]]]:
    """(keyword, arguments) of each line of an ssh_config."""
    found = []
    for line in text.decode(errors="replace").splitlines():
        words = line.strip().replace("=", " ", 1).split()
        if len(words) >= 2 and not words[0].startswith("#"):
            found.append((words[0].lower(), [word.strip('"') for word in words[1:]]))
    return found


def config_digest(path: str) -> str:
    """A hash of an ssh_config, the files its ``Include`` lines name (one level deep is
    enough to notice an edit) and the known_hosts files it (or OpenSSH's default) names:
    a host key added or revoked means another keeper too. A missing file hashes as
    missing."""
    digest = _sha256()
    text = _read(path)
    digest.update(text)
    texts = [text]
    for keyword, words in _settings(text):
        if keyword != "include":
            continue
        import glob  # an Include line: rare

        for word in words:
            pattern = os.path.expanduser(word)
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
            for included in sorted(glob.glob(pattern)):
                texts.append(_read(included))
                digest.update(included.encode() + b"\0" + texts[-1])
    known = list(_KNOWN_HOSTS_DEFAULTS)
    for text in texts:
        known += [
            word
            for keyword, words in _settings(text)
            if keyword in _KNOWN_HOSTS_KEYS
            for word in words
            if word.lower() != "none"
        ]
    for name in dict.fromkeys(os.path.expanduser(name) for name in known):
        digest.update(name.encode() + b"\0" + _read(name))
    return str(digest.hexdigest())


def identity(ssh_config: str | None, environ: dict[str, str] | None = None) -> str:
    """The hash naming the keeper that may serve a call with this ssh_config here."""
    import json

    env = dict(os.environ if environ is None else environ)
    path = config_file(ssh_config, env)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    facts = {
        "config": path,
        "config_digest": config_digest(path),
        "env": {key: env.get(key) for key in _ENV_KEYS},
        "own": {
            key: value
            for key, value in sorted(env.items())
            if key.startswith("ACTORCLUSTER_")
            and key not in _OWN_KEYS
            and key != "ACTORCLUSTER_SSH_CONFIG"
        },
        "python": sys.executable,
        "package": package,
        "uid": os.getuid(),
        "umask": _umask(),
    }
    encoded = json.dumps(facts, sort_keys=True).encode()
    digest = _sha256()
    digest.update(encoded)
    return str(digest.hexdigest())[:24]


def _sha256() -> Any:
    """A SHA-256 hash object, from the interpreter's own module when it has one:
    ``hashlib`` loads OpenSSL, which costs a call through the keeper more than all of
    its own work."""
    new: Callable[[], Any]
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256 as new  # type: ignore[import-not-found,unused-ignore]
        else:
            from _sha256 import sha256 as new  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # an interpreter built without them
        from hashlib import sha256 as new  # type: ignore[no-redef,unused-ignore]
    return new()


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def socket_path(folder: str, key: str) -> str:
    """The socket of the keeper named ``key`` in ``folder``."""
    return os.path.join(folder, f"k-{key}.sock")


def idle_seconds(environ: dict[str, str] | None = None) -> float:
    """How long a keeper waits with nothing to do before it exits."""
    env = os.environ if environ is None else environ
    try:
        return max(1.0, float(env.get(IDLE_ENV, "300")))
    except ValueError:
        return 300.0
