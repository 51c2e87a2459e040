"""What a bed host's logins write in the home they share with this machine: pyenv's shims.

Every host of a bed logs in as this machine's user, into this machine's home. Root's rc
files here run ``pyenv init``, whose ``pyenv rehash`` takes a lock file in
``$PYENV_ROOT/shims`` and rewrites the shims there: with one home, the logins of every
host (of every bed on the machine) wait for each other on that lock, which separate
machines never do (10 hosts connecting at once took 1.8x to 3x one host's connect,
most of it in that queue, and a login waits PYENV_REHASH_TIMEOUT for a held lock).
So each host's sshd runs in a mount namespace of its own (an isolated host's already
is), where a copy of the shims folder, the host's own, is mounted over it. Where that
is not possible (not root, no pyenv, no ``unshare``), hosts share the folder as before.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["LOCK_NAME", "own_shims_argv", "pyenv_shims"]

LOCK_NAME = ".pyenv-shim"
"""pyenv rehash's lock, in the shims folder (also the prototype shim)."""
_MOUNT_AND_EXEC = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


def pyenv_shims() -> Path | None:
    """This machine's pyenv shims folder, if the user has pyenv (what logins rehash)."""
    shims = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "shims")
    return shims if shims.is_dir() else None


def own_shims_argv(argv: list[str], copy: Path, *, own_mounts: bool) -> list[str]:
    """``argv`` (sshd's) run where ``copy``, a copy of the shims made now if missing, is
    mounted over this machine's shims folder: the host's own. ``own_mounts``: ``argv``
    gets a mount namespace of its own anyway (``ip netns exec`` makes one); else
    ``unshare`` makes one. ``argv`` as it is where that cannot be done."""
    shims = pyenv_shims()
    unshare = shutil.which("unshare")
    if shims is None or os.getuid() != 0 or (unshare is None and not own_mounts):
        return argv
    if not copy.is_dir():
        staging = copy.with_name(copy.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(shims, staging, symlinks=True, ignore=shutil.ignore_patterns(LOCK_NAME))
        staging.rename(copy)
    mounted = ["sh", "-c", _MOUNT_AND_EXEC, "sh", str(copy), str(shims), *argv]  # pid kept
    if own_mounts:
        return mounted
    assert unshare is not None
    return [unshare, "--mount", "--propagation", "private", *mounted]
