"""The frame protocol between the client and the remote agent (stdlib only).

Both ends import this module: the client from the installed package, the agent from
the copy sent over the SSH channel at connect time. It must therefore use nothing but
the standard library, and keep working on every Python from 3.10 on.

A frame is a fixed 20-byte header followed by a body::

    magic (2 bytes, b"\\xacF") | version (1) | kind (1) | request id (8, unsigned)
    | body length (4, unsigned) | crc32 of the body (4)

all big-endian. The body is a pickled ``dict`` of plain data (str, bytes, int, float,
bool, None, list, tuple, dict). The request id ties replies to the request that caused
them; id 0 is for frames that belong to no request (HELLO).

A stream that ends exactly between frames is a clean end (``read_frame`` returns
``None``); one that ends inside a frame, a bad magic or version, a body over
``MAX_BODY`` or a CRC mismatch raises :class:`FrameError`, never blocks for more.

Decoding is bounded, because each end decodes what the other sends and neither may be
able to freeze the other: the body names no class (plain data only), and a decoded body
is checked before anyone looks at it. Containers nest at most :data:`MAX_DEPTH` deep,
hold at most :data:`MAX_ITEMS` entries in all and :data:`MAX_TEXT` characters and bytes
of strings in all, and integers fit in 64 bits, counting shared parts each time they
are reached (as printing them would): a 1 KB body of 40 levels of shared lists, which
would print as 2^40 items, is refused in microseconds. The check stops at the first
limit passed, so it costs at most :data:`MAX_ITEMS` steps.

That check runs on what was built, so a body is first scanned before anything is
built from it (:func:`scan_body`): only the opcodes plain data needs are allowed (no
sets, no classes, no calls) and a body over :data:`SCAN_ABOVE` bytes may hold at most
:data:`MAX_OPCODES` of them. Each opcode builds at most one small object, so a body
costs at most a few times its size to decode: 16 MiB of ``EMPTY_SET`` opcodes, which
unpickle to 3.9 GB, are refused at the first one, and 16 MiB of ``EMPTY_LIST`` ones
after :data:`MAX_OPCODES`.
"""

from __future__ import annotations

import enum
import io
import pickle
import struct
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CONTROL_KINDS",
    "HEADER",
    "MAGIC",
    "MAX_BODY",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_OPCODES",
    "MAX_TEXT",
    "READY_MARKER",
    "SCAN_ABOVE",
    "VERSION",
    "Frame",
    "FrameError",
    "FrameReader",
    "Kind",
    "check_plain",
    "encode_frame",
    "scan_body",
]

MAGIC = b"\xacF"
VERSION = 2
HEADER = struct.Struct(">2sBBQII")
MAX_BODY = 64 * 1024 * 1024
MAX_DEPTH = 32
"""How deep containers may nest in a frame body."""
MAX_ITEMS = 1_000_000
"""How many container entries a frame body may hold in all (shared ones each time)."""
MAX_TEXT = 2 * MAX_BODY
"""How many characters and bytes its strings may hold in all (shared ones each time)."""
_INT_LIMIT = 1 << 64
MAX_OPCODES = 4 * MAX_ITEMS
"""How many pickle opcodes a frame body may hold (each builds at most one small object;
a dict entry within :data:`MAX_ITEMS` takes up to four: key, value, their memo
entries): decoding one body builds at most about 130 MB, whatever its size."""
SCAN_ABOVE = 64 * 1024
"""Bodies up to this size are not scanned opcode by opcode: they cannot hold more than
this many opcodes, and their opcodes are still checked by the unpickler."""
READY_MARKER = b"\n\x00ACTORCLUSTER-AGENT-READY-1\x00\n"
"""Written by the agent before its first frame; anything before it is shell noise."""

_PICKLE_PROTOCOL = 4


class Kind(enum.IntEnum):
    """What a frame is. Requests go client to agent; replies and events come back."""

    # client -> agent
    SETUP = 1
    """{working_dir: str, temporary: bool, env: dict} -> RESULT {working_dir}."""
    PING = 2
    """{received: int} -> PONG {received: int} (each side's count of data frames received)."""
    RUN = 3
    """{cmd: str, env: dict, cwd: str|None, stream: bool, stdin?: bool} -> OUTPUT* (and
    STDIN_TAKEN* with ``stdin``) then EXIT {code}. Without ``stdin`` the command reads
    an empty stdin; with it, STDIN frames feed it until STDIN_EOF."""
    CALL = 4
    """{payload: bytes, env: dict, cwd: str|None} -> OUTPUT* then RESULT {value: bytes}
    or RAISED {exc: bytes|None, type: str, traceback: str}."""
    CANCEL = 5
    """{target: int}: stop request ``target``; it answers ERROR {type: "cancelled"}."""
    FS = 6
    """{op: str, ...} -> RESULT {value} or ERROR. See the agent for the ops."""
    PUT = 7
    """{path: str, kind: "file"|"tar", mode: int|None, name: str|None} opens an upload
    (a file whose path is a folder goes into it as ``name``)."""
    PUT_CHUNK = 8
    """{data: bytes} for an open upload (same request id)."""
    PUT_END = 9
    """{} closes an upload -> RESULT {value: bytes written, path: where} or ERROR."""
    GET = 10
    """{path: str} -> DATA {kind: "file"|"tar", data: bytes}* then RESULT or ERROR."""
    FACTS = 11
    """{} -> RESULT {value: dict of host facts}."""
    PORTS = 12
    """{ports: list[int], host: str} -> RESULT {value: list[bool], free or not};
    {ports, group: int} -> RESULT {value: list[bool|None]}: whether a process of that
    process group listens on each (None: the host cannot tell)."""
    ACK = 13
    """{received: int}: how many data frames the sender of the ACK received so far
    (both directions; the other side may forget what it kept to resend them)."""
    ATTACH = 14
    """{secret: str, received: int}: the first frame on a new stream to a running agent
    (a reconnect): the session's secret and how many data frames the client received
    -> ATTACHED."""
    CLOSE = 15
    """{}: end the session now (no grace period): the agent cleans up and exits."""
    MODULE_SOURCE = 16
    """The answer to the agent's MODULE (same request id, the agent's): {name: str,
    found: bool} and, when found, {source: bytes, package: bool, origin: str}; when
    refused (a compiled module, the standard library, too big, excluded), {refused: str},
    the reason in words."""
    STDIN = 17
    """{data: bytes}: input for a RUN that asked for it (same request id), written to
    the command's stdin in order; each answers STDIN_TAKEN. Dropped once it ended."""
    STDIN_EOF = 18
    """{}: the end of a RUN's input: its stdin closes once what came before is written."""

    # agent -> client
    HELLO = 64
    """{pid: int, python: str, cwd: str} once, right after the ready marker."""
    PONG = 65
    OUTPUT = 66
    """{fd: 1|2, data: bytes}: a piece of a command's or function's output."""
    EXIT = 67
    """{code: int}: a command ended (negative: killed by that signal)."""
    RESULT = 68
    """{value: Any}: a request succeeded."""
    RAISED = 69
    """A called function raised."""
    ERROR = 70
    """{type: str, message: str, errno?: int}: a request failed on the agent."""
    DATA = 71
    """{kind: str, data: bytes}: a chunk of a download."""
    ATTACHED = 72
    """{received: int}: the answer to ATTACH: how many data frames the agent received;
    then the agent resends the data frames the client did not receive."""
    MODULE = 73
    """{name: str}: the agent asks the client for a module the host lacks (a request in
    the other direction: its id is the agent's own, answered by MODULE_SOURCE)."""
    MODULE_VERSION = 74
    """{name: str, version: str}: a module a function imported from the host's own
    copy, and that copy's version (the client logs a difference with its own, once)."""
    STDIN_TAKEN = 75
    """{size: int}: a STDIN frame's bytes were written to the command's stdin (or
    dropped, the command having closed it): the client may send that much more."""


CONTROL_KINDS = frozenset(
    {Kind.PING, Kind.PONG, Kind.ACK, Kind.ATTACH, Kind.ATTACHED, Kind.CLOSE, Kind.HELLO}
)
"""Frames about the stream itself: never counted, kept or resent. Every other frame is
a data frame: both ends number the data frames they send, keep them until the other
side acknowledges them (ACK, or the ``received`` of a PING or PONG), and after a
reconnect resend those the other side did not receive, so each is handled once."""


class Frame(NamedTuple):
    """One decoded frame."""

    kind: int
    request_id: int
    payload: dict[str, Any]


class FrameError(Exception):
    """A frame was truncated, corrupt, oversized or of an unknown version."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only: a frame body never names a class or function."""

    def find_class(self, module: str, name: str) -> Any:
        raise FrameError(f"frame body refers to {module}.{name}; only plain data is allowed")


_TEXT = (str, bytes)
_CONTAINERS = (list, tuple, dict)
_ATOMS = (type(None), bool, float)


def _push_entries(
    item: Any, is_dict: bool, depth: int, push: Callable[[tuple[Any, int]], None]
) -> None:
    """Push a container's entries (a dict's keys and values) at ``depth``."""
    if is_dict:
        for key, entry in item.items():
            push((key, depth))
            push((entry, depth))
    else:
        for entry in item:
            push((entry, depth))


def check_plain(value: object) -> None:
    """Raise :class:`FrameError` unless ``value`` is plain data within the limits
    (see the module docstring); at most :data:`MAX_ITEMS` steps."""
    items = text = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind in _TEXT:
            text += len(item)
            if text > MAX_TEXT:
                raise FrameError(f"frame body holds over {MAX_TEXT} characters of text")
        elif kind is int:
            if not -_INT_LIMIT < item < _INT_LIMIT:
                raise FrameError("frame body holds an integer wider than 64 bits")
        elif kind in _CONTAINERS:
            if depth >= MAX_DEPTH:
                raise FrameError(f"frame body nests deeper than {MAX_DEPTH} levels")
            items += len(item)
            if items > MAX_ITEMS:
                raise FrameError(f"frame body holds over {MAX_ITEMS} items")
            _push_entries(item, kind is dict, depth + 1, push)
        elif kind not in _ATOMS:
            raise FrameError(f"frame body holds a {kind.__name__}; only plain data is allowed")


_FIXED_ARGS = {
    0x80: 1,  # PROTO
    0x95: 8,  # FRAME
    0x68: 1,  # BINGET
    0x6A: 4,  # LONG_BINGET
    0x71: 1,  # BINPUT
    0x72: 4,  # LONG_BINPUT
    0x4A: 4,  # BININT
    0x4B: 1,  # BININT1
    0x4D: 2,  # BININT2
    0x47: 8,  # BINFLOAT
}
"""Plain-data opcodes with an argument of a fixed size: opcode -> its size."""
_SIZED_ARGS = {
    0x8C: 1,  # SHORT_BINUNICODE
    0x58: 4,  # BINUNICODE
    0x8D: 8,  # BINUNICODE8
    0x43: 1,  # SHORT_BINBYTES
    0x42: 4,  # BINBYTES
    0x8E: 8,  # BINBYTES8
    0x8A: 1,  # LONG1 (at most 9 bytes: 64-bit integers)
}
"""Plain-data opcodes followed by a length (of that many bytes, little-endian) and
that many bytes."""
_BARE = frozenset(b"\x94})](aesut\x85\x86\x87N\x88\x89")
"""Plain-data opcodes without an argument: MEMOIZE, EMPTY_DICT, EMPTY_TUPLE,
EMPTY_LIST, MARK, APPEND, APPENDS, SETITEM, SETITEMS, TUPLE, TUPLE1-3, NONE,
NEWTRUE, NEWFALSE."""
_STOP = 0x2E
_LONG1 = 0x8A
_LONG1_MAX = 9


def scan_body(body: bytes, budget: int = MAX_OPCODES) -> None:
    """Raise :class:`FrameError` unless ``body`` is a pickle of plain data made of at
    most ``budget`` opcodes, each one a plain-data opcode, ending at its STOP; nothing
    is built (at most ``budget`` steps)."""
    view = memoryview(body)
    size = len(body)
    at = ops = 0
    while at < size:
        op = view[at]
        at += 1
        ops += 1
        if ops > budget:
            raise FrameError(f"frame body holds over {budget} pickle opcodes")
        fixed = _FIXED_ARGS.get(op)
        if fixed is not None:
            at += fixed
            continue
        width = _SIZED_ARGS.get(op)
        if width is not None:
            length = int.from_bytes(view[at : at + width], "little")
            if op == _LONG1 and length > _LONG1_MAX:
                raise FrameError("frame body holds an integer wider than 64 bits")
            at += width + length
        elif op == _STOP:
            if at != size:
                raise FrameError("frame body goes on after its pickle's end")
            return
        elif op not in _BARE:
            raise FrameError(f"frame body holds pickle opcode {op:#04x}, not plain data")
    raise FrameError("frame body ends inside its pickle")


def encode_frame(
    kind: int, request_id: int, payload: dict[str, Any], *, check: bool = True
) -> bytes:
    """Return the bytes of one frame carrying ``payload``.

    Args:
        kind: the frame's kind.
        request_id: the request it belongs to.
        payload: the body.
        check: check ``payload`` is plain data within the limits first (the client
            skips it for the requests it builds itself: they are, and it is the hot path).

    Raises:
        FrameError: ``payload`` is not plain data within the limits (the other end
            would refuse it), or its body is over :data:`MAX_BODY`.
    """
    if check:
        check_plain(payload)
    body = pickle.dumps(payload, protocol=_PICKLE_PROTOCOL)
    if len(body) > MAX_BODY:
        raise FrameError(f"frame body of {len(body)} bytes exceeds the {MAX_BODY} byte limit")
    header = HEADER.pack(MAGIC, VERSION, kind, request_id, len(body), zlib.crc32(body))
    return header + body


class FrameReader:
    """Reads frames from a byte source.

    Args:
        recv: returns up to ``n`` bytes, ``b""`` at the end of the stream.
        chunk: how many bytes to ask ``recv`` for at a time.
    """

    def __init__(self, recv: Callable[[int], bytes], chunk: int = 256 * 1024) -> None:
        self._recv = recv
        self._chunk = chunk
        self._buffer = bytearray()

    def _fill(self, size: int) -> bool:
        """Buffer at least ``size`` bytes; False if the stream ended first."""
        while len(self._buffer) < size:
            data = self._recv(max(self._chunk, size - len(self._buffer)))
            if not data:
                return False
            self._buffer += data
        return True

    def read_frame(self) -> Frame | None:
        """Return the next frame, or None if the stream ended cleanly between frames."""
        if not self._fill(HEADER.size):
            if self._buffer:
                raise FrameError(
                    f"stream ended inside a frame header ({len(self._buffer)} of "
                    f"{HEADER.size} bytes)"
                )
            return None
        magic, version, kind, request_id, length, crc = HEADER.unpack_from(self._buffer)
        if magic != MAGIC:
            raise FrameError(f"bad frame magic {bytes(magic)!r} (expected {MAGIC!r})")
        if version != VERSION:
            raise FrameError(f"unsupported frame version {version} (expected {VERSION})")
        if length > MAX_BODY:
            raise FrameError(f"frame body of {length} bytes exceeds the {MAX_BODY} byte limit")
        end = HEADER.size + length
        if not self._fill(end):
            raise FrameError(
                f"stream ended inside a frame body ({len(self._buffer) - HEADER.size} of "
                f"{length} bytes)"
            )
        body = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        if zlib.crc32(body) != crc:
            raise FrameError(f"frame {request_id} failed its checksum (kind {kind})")
        problem = _decode(body)
        del body  # the error below, kept by whoever catches it, keeps none of it
        if isinstance(problem, str):
            raise FrameError(f"frame {request_id} (kind {kind}): {problem}")
        return Frame(kind, request_id, problem)


def _decode(body: bytes) -> dict[str, Any] | str:
    """The plain-data dict in ``body``, or what is wrong with it (a message, not an
    exception: a traceback would keep the body and whatever was built from it)."""
    problem = ""
    try:
        if len(body) > SCAN_ABOVE:
            scan_body(body)
        payload = _PlainDataUnpickler(io.BytesIO(body)).load()
        if not isinstance(payload, dict):
            return f"body is {type(payload).__name__}, not dict"
        check_plain(payload)
        return payload
    except FrameError as exc:
        problem = str(exc)
    except Exception as exc:  # any unpickling failure is a corrupt frame
        problem = f"undecodable body: {exc!r}"
    return problem
