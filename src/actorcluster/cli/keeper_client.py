"""The thin side of the keeper: hand a call to the user's keeper (standard library only).

:func:`through_keeper` finds the keeper for this call's ssh_config (starting it when there
is none), sends it the arguments, the current folder and this process's stdin, stdout
and stderr themselves (``SCM_RIGHTS``: the keeper reads and writes them directly, so
output, terminals and closed pipes behave as they do here), forwards Ctrl-C, SIGTERM and
SIGHUP, and returns the exit code the keeper sends back. It returns None whenever the call
should run here instead: keepers turned off, a command or option they do not serve, no
private folder, or a keeper that would not start.

The protocol is JSON lines over the stream socket: the request (with the three
descriptors), then ``{"signal": N}`` lines; the keeper answers ``{"exit": N}``, or
``{"run_here": true}`` (before any output) for a call it does not serve (``localhost``).

A call it serves is a whole process whose every millisecond counts (the keeper answers
in a few): it imports only what it uses, and of ``socket`` and ``signal`` only the C
modules under them (``_socket``, ``_signal``), whose Python wrappers would cost more
(enum conversions) than the rest of the call's own work. Starting a keeper, the rare
case, imports more.
"""

from __future__ import annotations

import _socket
import contextlib
import json
import os
import sys

from actorcluster.keeper import paths
from actorcluster.keeper.finder import ask, find_keeper, request_lines, start_keeper

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    import _signal
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["ask", "request_lines", "start_keeper", "through_keeper"]

_FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)


def _absolute_config(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--ssh-config``'s path made absolute (the keeper works elsewhere)."""
    args = list(argv)
    for index, word in enumerate(args):
        if word == "--":
            break
        if word == "--ssh-config" and index + 1 < len(args):
            args[index + 1] = paths.config_file(args[index + 1])
        elif word.startswith("--ssh-config="):
            args[index] = "--ssh-config=" + paths.config_file(word.split("=", 1)[1])
    return args


@contextlib.contextmanager
def _forwarding(sock: _socket.socket) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP go to the keeper (which stops the command) while
    the block runs."""

    def forward(number: int, _: object) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(json.dumps({"signal": number}).encode() + b"\n")

    previous = {number: _signal.signal(number, forward) for number in _FORWARDED}
    try:
        yield
    finally:
        for number, handler in previous.items():
            _signal.signal(number, handler)


def _send_request(sock: _socket.socket, key: str, argv: Sequence[str]) -> None:
    sizes: list[list[int] | None] = []
    for fd in (0, 1, 2):
        try:
            sizes.append(list(os.get_terminal_size(fd)))
        except OSError:
            sizes.append(None)
    request = {
        "op": "run",
        "key": key,
        "argv": _absolute_config(argv),
        "cwd": os.getcwd(),
        "terminal_sizes": sizes,
    }
    payload = json.dumps(request).encode() + b"\n"
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))  # C ints
    sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])


def _std_fds_open() -> bool:
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return False
    return True


def through_keeper(argv: Sequence[str] | None = None) -> int | None:
    """Run the call through the user's keeper; its exit code, or None to run it here."""
    args = list(sys.argv[1:] if argv is None else argv)
    call = paths.parse_call(args)
    if not paths.keeper_wanted(call) or not _std_fds_open():
        return None
    found = find_keeper(call.ssh_config)
    if found is None:
        return None
    sock, key, _ = found
    try:
        with _forwarding(sock):
            try:
                _send_request(sock, key, args)
            except OSError:
                return None
            try:
                for message in request_lines(sock):
                    if "exit" in message:
                        return int(message["exit"])
                    if message.get("run_here"):
                        return None
            except (OSError, ValueError):
                pass
    finally:
        sock.close()
    print("actorcluster: error: the keeper went away during the command", file=sys.stderr)
    return 1
