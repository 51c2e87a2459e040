"""Modules the host lacks, fetched from the client as a function imports them.

Stdlib only (see the package docstring). When SETUP turns it on, an :class:`Importer`
goes first on ``sys.meta_path``. An import it sees (not yet in ``sys.modules``, not of
the standard library, nor the agent's own) is decided thus:

- a submodule of a package the client sent: asked of the client;
- a submodule of any other package: left to the host;
- a top-level module the host has: the host's copy is used (its version is reported
  to the client, which logs a difference with its own once); with ``prefer_client``,
  the client is asked first and the host's copy used only when the client has none;
- a top-level module the host lacks: asked of the client.

Asking sends MODULE {name} (a data frame, resent after a reconnect) and blocks the
importing thread until MODULE_SOURCE answers, at most :attr:`Importer.timeout` seconds
(then ImportError saying so). The answer is kept for the session, whatever it was: a
module is asked for once. Source the client sent is compiled and run from memory,
never written to disk. An answer may bundle the answers for modules the client expects
to be imported next (``bundle``: a list of answers, each with its ``name``); they are
kept as if asked for, and used only where an import would have asked (so a package
costs one round trip, not one per module). A refusal (a compiled extension module,
one too big, one the user excluded) is a ModuleNotFoundError with the client's
reason. The session's reader threads never ask (the answer arrives on them), nor does
a process a function forks (nobody there reads answers): imports there go on as if the
hook were not installed.
What is sent is a module's source: a package's data files are not (its ``__path__`` is
empty, so ``importlib.resources`` finds nothing in it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import os
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import frames, versions

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import CodeType, ModuleType

    from .hub import Hub

__all__ = ["DEFAULT_TIMEOUT", "Importer"]

Kind = frames.Kind

DEFAULT_TIMEOUT = 30.0
"""Seconds an import waits for the client's answer unless SETUP says otherwise."""

BUNDLE_LIMIT = 1024
"""Bundled answers taken from one MODULE_SOURCE, at most."""

_NEVER = frozenset(
    {*getattr(sys, "stdlib_module_names", ()), *sys.builtin_module_names, "_acagent", "cloudpickle"}
)
"""Top-level names never asked for: the standard library (the host's own is used) and
the agent's own modules."""


class _Answer:
    """What the client said about one module."""

    __slots__ = ("_code", "error", "origin", "package", "source")

    def __init__(
        self,
        source: bytes | None = None,
        *,
        package: bool = False,
        origin: str = "",
        error: str | None = None,
    ) -> None:
        self.source = source
        self.package = package
        self.origin = origin
        self.error = error
        self._code: CodeType | None = None

    def code(self) -> CodeType:
        """The module's code, compiled once."""
        if self._code is None:
            assert self.source is not None
            self._code = compile(self.source, self.origin, "exec", dont_inherit=True)
        return self._code


class _Fetch:
    """One MODULE request waiting for its answer."""

    __slots__ = ("answer", "done", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = threading.Event()
        self.answer: _Answer | None = None


class _ShippedLoader(importlib.abc.Loader):
    """Runs a module from the source the client sent."""

    def __init__(self, answer: _Answer) -> None:
        self._answer = answer

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        """The default module object."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Run the module's code in it."""
        exec(self._answer.code(), module.__dict__)

    def get_source(self, fullname: str) -> str:
        """The module's source (for tracebacks)."""
        return importlib.util.decode_source(self._answer.source or b"")

    def is_package(self, fullname: str) -> bool:
        """Whether it is a package."""
        return self._answer.package


def _spec(name: str, answer: _Answer) -> importlib.machinery.ModuleSpec:
    spec = importlib.machinery.ModuleSpec(
        name, _ShippedLoader(answer), origin=answer.origin, is_package=answer.package
    )
    spec.has_location = bool(answer.origin)  # __file__: where it lives on the client
    return spec


def _parse(name: str, payload: dict[str, Any]) -> _Answer:
    """The answer a MODULE_SOURCE body stands for (checked: the client may be old)."""
    refused = payload.get("refused")
    if isinstance(refused, str) and refused:
        return _Answer(error=refused[:2000])
    source = payload.get("source")
    if not payload.get("found") or not isinstance(source, bytes):
        return _Answer()
    origin = payload.get("origin")
    return _Answer(
        source,
        package=bool(payload.get("package")),
        origin=origin if isinstance(origin, str) else f"<client>/{name}",
    )


class Importer(importlib.abc.MetaPathFinder):
    """The import hook of one agent: asks the client for what the host lacks.

    Args:
        hub: where MODULE and MODULE_VERSION frames go.
    """

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Fetch] = {}
        self._fetching: dict[str, _Fetch] = {}
        self._answers: dict[str, _Answer] = {}
        self._shipped: set[str] = set()
        self._reported: set[str] = set()
        self._reports: queue.SimpleQueue[str] | None = None
        self._local = threading.local()
        self._closed = False
        self._pid = os.getpid()
        self.prefer_client = False
        """Whether a top-level module the client has is taken from it even when the
        host has one too."""
        self.timeout = DEFAULT_TIMEOUT
        """Seconds an import waits for the client's answer."""

    # --- configuration (SETUP) ---------------------------------------------------------

    def configure(self, settings: object) -> None:
        """SETUP's ``modules``: {enabled, prefer_client, timeout}; installs the hook
        first on ``sys.meta_path`` (or removes it)."""
        if not isinstance(settings, dict):
            return
        self.prefer_client = bool(settings.get("prefer_client"))
        timeout = settings.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            self.timeout = float(timeout)
        installed = self in sys.meta_path
        if settings.get("enabled") and not installed:
            sys.meta_path.insert(0, self)
        elif not settings.get("enabled") and installed:
            sys.meta_path.remove(self)

    def mark_reader(self) -> None:
        """The calling thread reads the client's frames: it must never wait for one."""
        self._local.reader = True

    def close(self) -> None:
        """The session is over: every waiting import fails at once."""
        with self._lock:
            self._closed = True
            waiting = list(self._waiting.values())
        for fetch in waiting:
            fetch.done.set()

    # --- the finder --------------------------------------------------------------------

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for a module the client sends; None to leave it to the host.

        Raises:
            ModuleNotFoundError: the client refused to send it (its reason), or did not
                answer in time.
        """
        top = fullname.partition(".")[0]
        if top in _NEVER or self._closed or getattr(self._local, "reader", False):
            return None
        if os.getpid() != self._pid:
            return None  # a child the function forked: nobody there reads the answer
        dotted = top != fullname
        if dotted and top not in self._shipped:
            return None
        if not dotted and not self.prefer_client and self._host_has(fullname):
            self._report_version(fullname)
            return None
        answer = self._fetch(fullname)
        if answer.source is not None:
            with self._lock:
                self._shipped.add(top)
            return _spec(fullname, answer)
        if answer.error is not None and (dotted or not self._host_has(fullname)):
            raise ModuleNotFoundError(answer.error, name=fullname)
        return None

    def _host_has(self, name: str) -> bool:
        """Whether another finder (the host's own) finds top-level module ``name``."""
        try:
            return self._host_spec(name) is not None
        except Exception:  # the host's finder fails on it: the import shows that, as without us
            return True

    def _host_spec(self, name: str) -> importlib.machinery.ModuleSpec | None:
        """``name``'s spec from the host's own finders (whatever they raise, raised)."""
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is not self and find is not None:
                spec = find(name, None)
                if spec is not None:
                    return spec  # type: ignore[no-any-return]
        return None

    # --- asking the client -------------------------------------------------------------

    def _fetch(self, name: str) -> _Answer:
        """The client's answer for ``name``: asked once per session, whoever asks."""
        with self._lock:
            answer = self._answers.get(name)
            if answer is not None:
                return answer
            fetch = self._fetching.get(name)
            request_id = None
            if fetch is None:
                fetch = self._fetching[name] = _Fetch(name)
                request_id = next(self._ids)
                self._waiting[request_id] = fetch
        if request_id is not None:
            self._hub.send(Kind.MODULE, request_id, {"name": name})
        if fetch.done.wait(self.timeout) and fetch.answer is not None:
            return fetch.answer
        with self._lock:
            if self._fetching.get(name) is fetch:
                del self._fetching[name]  # the next import asks again
        why = "the session ended" if self._closed else f"no answer within {self.timeout:g} s"
        return _Answer(
            error=f"No module named {name!r} on the host, and the client sent none ({why})"
        )

    def answer(self, request_id: int, payload: dict[str, Any]) -> None:
        """MODULE_SOURCE arrived (on the reader thread: quick)."""
        with self._lock:
            fetch = self._waiting.pop(request_id, None)
            if fetch is None:
                return
            answer = _parse(fetch.name, payload)
            self._answers[fetch.name] = answer
            self._keep_bundle(payload.get("bundle"))
            if self._fetching.get(fetch.name) is fetch:
                del self._fetching[fetch.name]
        fetch.answer = answer
        fetch.done.set()

    def _keep_bundle(self, bundle: object) -> None:
        """Keep the bundled answers (under the lock) not already answered or asked."""
        if not isinstance(bundle, list):
            return
        for entry in bundle[:BUNDLE_LIMIT]:
            if not isinstance(entry, dict):
                continue
            name = entry.get("name")
            if (
                isinstance(name, str)
                and name
                and all(part.isidentifier() for part in name.split("."))
                and name not in self._answers
                and name not in self._fetching
                and entry.get("found")
                and isinstance(entry.get("source"), bytes)
            ):
                self._answers[name] = _parse(name, entry)

    # --- the host's versions -----------------------------------------------------------

    def _report_version(self, name: str) -> None:
        """Report (once, from a thread of its own) the version of the host's ``name``."""
        with self._lock:
            if name in self._reported:
                return
            self._reported.add(name)
            reports = self._reports
            if reports is None:
                reports = self._reports = queue.SimpleQueue()
                threading.Thread(
                    target=self._report_loop, args=(reports,), name="agent-versions", daemon=True
                ).start()
        reports.put(name)

    def _report_loop(self, reports: queue.SimpleQueue[str]) -> None:
        while not self._closed:
            name = reports.get()
            try:
                spec = self._host_spec(name)
            except Exception:  # a finder that fails here failed the import too
                continue
            origin = spec.origin if spec is not None else None
            version = versions.module_version(name, origin)
            if version is not None:
                self._hub.send(Kind.MODULE_VERSION, 0, {"name": name, "version": version})
