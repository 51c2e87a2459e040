"""How the agent gets onto a host: a one-line first stage and a compressed second stage.

The first stage is short enough for a command line (``python3 -c '...'``). It reads a
length line and that many bytes of zlib-compressed Python from stdin and runs them. The
second stage installs an import hook serving the agent package
(:mod:`actorcluster.remote.agent`, as the private package ``_acagent``) and
cloudpickle's modules, compiled here and marshalled, from memory, and starts the agent,
which goes on reading frames from the same stdin. Nothing is written to the host's disk
and nothing is installed.

The host may run any CPython from 3.8 on. Marshalled code is only read by the minor
version that wrote it: a host of another version writes :data:`SOURCES_REQUEST` and
reads the modules' sources instead (:func:`source_stage`, one more round trip on such
hosts only), compiling them there. Which interpreter runs the agent is decided on the
host in the same command (:func:`remote_command`): one of the client's version when the
host has one (on ``PATH``, or a pyenv or uv install), else ``python3``.
"""

from __future__ import annotations

import marshal
import shlex
import sys
import zlib
from functools import cache
from pathlib import Path

__all__ = [
    "AGENT_PACKAGE",
    "ATTACH_STUB",
    "MIN_PYTHON",
    "SOURCES_REQUEST",
    "StageTwo",
    "attach_command",
    "first_stage",
    "kill_command",
    "remote_command",
    "source_stage",
    "stage_two",
]

AGENT_PACKAGE = "_acagent"
"""The name the agent's package has on the host."""

FIRST_STAGE = (
    "import sys,zlib;b=sys.stdin.buffer;n=int(b.readline());"
    "exec(compile(zlib.decompress(b.read(n)),'<actorcluster-agent>','exec'))"
    "  # actorcluster.remote.agent"
)
"""The first stage. The trailing comment names the process in ``ps``/``pgrep -f``."""

MIN_PYTHON = (3, 8)
"""The oldest Python the agent runs on."""

SOURCES_REQUEST = b"\n\x00ACTORCLUSTER-AGENT-WANTS-SOURCES-1\x00\n"
"""Written by a second stage running on another Python minor version than the client's:
it then reads the modules' sources (:func:`source_stage`) instead of marshalled code."""

_SECOND_STAGE_TEMPLATE = """
import sys, importlib.abc, importlib.util, marshal, zlib
_WANT = {version!r}
_HAVE = tuple(sys.version_info[:2])
if _HAVE < {minimum!r}:
    sys.stderr.write("actorcluster agent needs Python >= %d.%d, found %s at %s\\n"
                     % ({minimum!r} + (sys.version.split()[0], sys.executable)))
    sys.stderr.flush()
    raise SystemExit(3)
_CODE = sys.stdin.buffer.read(int(sys.stdin.buffer.readline()))
if _HAVE == _WANT:
    _CODE = marshal.loads(zlib.decompress(_CODE))
else:
    sys.stdout.buffer.write({request!r})
    sys.stdout.buffer.flush()
    _n = int(sys.stdin.buffer.readline())
    _CODE = dict((_name, (_package, compile(_source, "<actorcluster>/" + _name, "exec")))
                 for _name, (_package, _source)
                 in marshal.loads(zlib.decompress(sys.stdin.buffer.read(_n))).items())

class _InMemoryFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name not in _CODE:
            return None
        is_package = _CODE[name][0]
        return importlib.util.spec_from_loader(name, self, is_package=is_package)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        is_package, code = _CODE[module.__name__]
        if is_package:
            module.__path__ = []
        exec(marshal.loads(code) if isinstance(code, bytes) else code, module.__dict__)

sys.meta_path.insert(0, _InMemoryFinder())
import {package}.main
{package}.main.main()
"""
"""The second stage's source: it reads the modules, a length line and a zlib-compressed
marshalled dict {name: (is_package, marshalled code)}, from stdin right after itself
(not as a literal in its source, which the host would decompress and compile: ~20 ms of
every connect), or their sources on another Python version."""


def _package_sources(
    directory: Path, package: str, select: str = "*.py"
) -> dict[str, tuple[bool, str]]:
    sources: dict[str, tuple[bool, str]] = {}
    for path in sorted(directory.glob(select)):
        if path.name == "__init__.py":
            sources[package] = (True, path.read_text(encoding="utf-8"))
        else:
            sources[f"{package}.{path.stem}"] = (False, path.read_text(encoding="utf-8"))
    sources.setdefault(package, (True, ""))
    return sources


def _agent_sources() -> dict[str, tuple[bool, str]]:
    """The agent package (:mod:`actorcluster.remote.agent`), whole, as ``_acagent``."""
    sources = _package_sources(Path(__file__).parent / "agent", AGENT_PACKAGE)
    sources.pop(f"{AGENT_PACKAGE}.__main__", None)  # the bootstrap starts main() itself
    return sources


def _cloudpickle_sources() -> dict[str, tuple[bool, str]]:
    """cloudpickle's modules, found without importing it (a command line that calls no
    function remotely does not need it)."""
    import importlib.util

    spec = importlib.util.find_spec("cloudpickle")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("cloudpickle is not installed", name="cloudpickle")
    return _package_sources(Path(spec.origin).parent, "cloudpickle")


class StageTwo:
    """The compressed second stage and its modules, ready to be written after the first
    stage starts."""

    def __init__(self, code: bytes, modules: bytes) -> None:
        self.code = code
        """The zlib-compressed Python source of the second stage."""
        self.modules = modules
        """The zlib-compressed marshalled modules it reads next."""

    def wire_bytes(self) -> bytes:
        """What the client writes to the first stage's stdin (all at once: no round
        trip waits between the stages)."""
        return b"%d\n%s%d\n%s" % (len(self.code), self.code, len(self.modules), self.modules)


_COMPILED_FORMAT = 1
"""Changes with what :func:`_compiled` makes of the sources (a key of its cached result)."""


def _compiled(sources: dict[str, tuple[bool, str]]) -> dict[str, tuple[bool, bytes]]:
    """Modules as marshalled code objects, for a host of the client's Python minor
    version (compiling them there cost ~25 ms of every connect)."""
    return {
        name: (is_package, marshal.dumps(compile(source, f"<actorcluster>/{name}", "exec")))
        for name, (is_package, source) in sources.items()
    }


@cache
def stage_two() -> StageTwo:
    """Build (once per process) the second stage for this client's Python version:
    compiling and compressing its modules costs ~60 ms, so the result is kept in the
    user's cache folder (:mod:`~actorcluster.remote.stage_cache`) under a hash of the
    sources and the interpreter, and the next process reads it from there."""
    from actorcluster.remote import stage_cache

    sources = {**_cloudpickle_sources(), **_agent_sources()}
    source = _SECOND_STAGE_TEMPLATE.format(
        version=tuple(sys.version_info[:2]),
        minimum=MIN_PYTHON,
        request=SOURCES_REQUEST,
        package=AGENT_PACKAGE,
    )
    code = zlib.compress(source.encode("utf-8"), 6)

    def build() -> bytes:
        return zlib.compress(marshal.dumps(_compiled(sources)), 6)

    key = repr((_COMPILED_FORMAT, sorted(sources.items()))).encode()
    return StageTwo(code, stage_cache.cached(key, build))


@cache
def source_stage() -> bytes:
    """What a second stage on another Python minor version reads after it wrote
    :data:`SOURCES_REQUEST`: a length line and the modules' sources (a zlib-compressed
    marshalled dict of plain strings, which every Python 3 reads alike)."""
    sources = {**_cloudpickle_sources(), **_agent_sources()}
    code = zlib.compress(marshal.dumps(sources, 4), 6)
    return b"%d\n" % len(code) + code


def first_stage() -> str:
    """The first stage's Python source (one line)."""
    return FIRST_STAGE


ATTACH_STUB = (
    "import socket,struct,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
    "s.sendmsg([b'a'],[(socket.SOL_SOCKET,socket.SCM_RIGHTS,struct.pack('2i',0,1))]);"
    "s.recv(1)  # actorcluster.remote.attach"
)
"""Hands this SSH session's stdin and stdout to a running agent (its session's socket),
then waits until the agent lets them go. See :mod:`actorcluster.remote.agent.links`."""


def _candidates() -> list[str]:
    """Interpreters of the client's minor version a host may have, in order: on
    ``PATH``, then pyenv's and uv's installs in the home folder (shell globs)."""
    major, minor = sys.version_info[:2]
    name = f"python{major}.{minor}"
    return [
        name,
        f'"$HOME"/.pyenv/versions/{major}.{minor}.*/bin/{name}',
        f'"$HOME"/.local/share/uv/python/cpython-{major}.{minor}.*/bin/{name}',
    ]


def _python_exec(python: str | None, program: str, *args: str) -> str:
    """``exec PYTHON -c PROGRAM ARGS``: the given interpreter, else one of the client's
    minor version when the host has one (:func:`_candidates`), else ``python3``.

    A version manager's shim (a path with ``/shims/``: pyenv, asdf) is taken only when
    no candidate is a real interpreter: a pyenv shim is a shell script that runs
    ``pyenv exec``, ~100 ms of every connect, while the interpreter it would run is
    usually the pyenv install the next candidate names."""
    tail = " ".join(shlex.quote(arg) for arg in (program, *args))
    if python:
        return f"exec {shlex.quote(python)} -c {tail}"
    return (
        f"s=; p=; for c in {' '.join(_candidates())}; do "
        'q=$(command -v "$c" 2>/dev/null) || continue; '
        "case $q in */shims/*) s=${s:-$q};; *) p=$q; break;; esac; done; "
        f'exec "${{p:-${{s:-python3}}}}" -c {tail}'
    )


def attach_command(socket_path: str, python: str | None = None) -> str:
    """The shell command that re-attaches a new SSH session to a running agent."""
    return _python_exec(python, ATTACH_STUB, socket_path)


def kill_command(pid: int, *, graceful: bool) -> str:
    """The shell command that ends a given agent, if it is still ours: ``graceful``,
    it is woken and asked to clean up (SIGCONT, SIGTERM), and killed after 2 s if it did
    not; else killed outright (its watchdog kills what it started; its folders wait for
    a new agent to take them over)."""
    pid = int(pid)
    check = f"ps -ww -o command= -p {pid} 2>/dev/null | grep -q actorcluster.remote.agent || exit 0"
    if not graceful:
        return f"{check}; kill -KILL {pid}"
    wait = f"for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.2; done"
    return f"{check}; kill -CONT {pid}; kill -TERM {pid}; {wait}; kill -KILL {pid}"


def remote_command(python: str | None = None) -> str:
    """The shell command that starts the agent on a host.

    Args:
        python: the interpreter to run. None: one of the client's minor version when
            the host has one (``python3.X`` on ``PATH``, or a pyenv or uv install of
            3.X), else ``python3``.
    """
    return _python_exec(python, FIRST_STAGE)
