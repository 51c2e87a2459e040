"""What the client decodes from a host is bounded and lazy: frame bodies within limits,
a host's text cut before formatting, a remote exception unpickled only when asked for."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorcluster import FileTransferError, RemoteFunctionError, Runtime
from actorcluster.errors import RemoteOperationError
from actorcluster.remote.agent.frames import (
    HEADER,
    MAGIC,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_TEXT,
    VERSION,
    FrameError,
    FrameReader,
    Kind,
    check_plain,
    encode_frame,
)

# --- frame bodies within limits ------------------------------------------------------


def _decode(payload: object, protocol: int = 4) -> object:
    body = pickle.dumps(payload, protocol=protocol)
    header = HEADER.pack(MAGIC, VERSION, Kind.RESULT, 7, len(body), zlib.crc32(body))
    stream = io.BytesIO(header + body)
    frame = FrameReader(stream.read).read_frame()
    assert frame is not None
    return frame.payload


def _nested(levels: int) -> list[object]:
    nested: list[object] = []
    for _ in range(levels):
        nested = [nested, nested]  # shared: tiny pickled, 2**levels items printed
    return nested


def _deep(levels: int) -> object:
    """``levels`` lists, one inside the other (in a frame body, the body is one more)."""
    deep: object = 0
    for _ in range(levels):
        deep = [deep]
    return deep


shared_text = "x" * (MAX_TEXT // 4)


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"v": _nested(40)}, "nests deeper"),
        ({"v": _deep(MAX_DEPTH)}, "nests deeper"),
        ({"v": [[0] * 1000] * (MAX_ITEMS // 1000 + 1)}, "items"),
        ({"v": [shared_text] * 5}, "characters"),
        ({"v": 2**64}, "64 bits"),
        ({"v": -(2**64)}, "64 bits"),
        ({"v": {1, 2}}, "set"),
        ({"v": frozenset()}, "frozenset"),
    ],
    ids=["bomb", "deep", "items", "shared-text", "big-int", "big-negative", "set", "frozenset"],
)
def test_bodies_past_the_limits_are_refused_by_both_ends(payload: object, complaint: str) -> None:
    with pytest.raises(FrameError, match=complaint):
        _decode(payload)
    with pytest.raises(FrameError, match=complaint):
        encode_frame(Kind.RESULT, 1, payload)  # type: ignore[arg-type]


def test_a_bytearray_body_is_refused() -> None:
    with pytest.raises(FrameError, match="bytearray"):
        _decode({"v": bytearray(b"x")}, protocol=5)


def test_bodies_at_the_limits_decode() -> None:
    payload = {"deep": _deep(MAX_DEPTH - 1), "int": 2**64 - 1, "items": [0] * (MAX_ITEMS - 100)}
    assert _decode(payload) == payload


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64) + 1, 2**64 - 1) | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(plain)
def test_plain_data_within_the_limits_is_accepted(value: object) -> None:
    check_plain({"v": value})


# --- a host's text is cut before formatting ------------------------------------------


def test_a_huge_error_from_a_host_formats_short() -> None:
    error = RemoteOperationError("host-1", "stat", "T" * 10**6, "M" * 10**7, 28)
    assert len(str(error)) < 10_000
    assert "more characters" in str(error)
    transfer = FileTransferError("host-1", "/p", "R" * 10**7, 28)
    assert len(str(transfer)) < 10_000
    assert (transfer.errno, transfer.filename) == (28, "/p")
    assert pickle.loads(pickle.dumps(transfer)).errno == 28


def test_a_huge_remote_traceback_formats_its_tail() -> None:
    traceback = "x" * 10**6 + "the last line"
    error = RemoteFunctionError("t", 0, "run_function f", "E" * 10**5, traceback, "host-1")
    assert len(str(error)) < 10_000
    assert str(error).endswith("the last line")
    assert error.remote_traceback == traceback


# --- a remote exception is unpickled only when asked for -----------------------------


def _loaded_marker(path: str) -> ValueError:
    Path(path).write_text("unpickled")
    return ValueError(path)


class MarkerError(Exception):
    """An exception whose unpickling leaves a file behind."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_loaded_marker, (str(self.args[0]),))


def _dumps_without_copyreg(value: object) -> bytes:
    """``pickle.dumps`` by the class's own ``__reduce__``: importing dask.distributed
    registers tblib's reducer for every exception class in copyreg, which pickles
    ``__cause__`` too (and so unpickles the host's exception, as reading it does)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dispatch_table = {}
    pickler.dump(value)
    return buffer.getvalue()


def test_the_exception_is_unpickled_on_first_access_only(tmp_path: Path) -> None:
    trace = tmp_path / "unpickled"
    data = pickle.dumps(MarkerError(str(trace)))
    error = RemoteFunctionError("t", 0, "run_function f", "MarkerError", "tb", "host-1", data)
    with pytest.raises(RemoteFunctionError) as caught:
        raise error from None
    assert str(caught.value)
    copy = pickle.loads(_dumps_without_copyreg(error))
    assert copy == error
    assert not trace.exists()  # raised, printed, pickled: still not unpickled
    cause = error.__cause__
    assert trace.exists()
    assert isinstance(cause, ValueError)
    assert error.exception is cause
    trace.unlink()
    assert error.__cause__ is cause
    assert not trace.exists()  # loaded once


def test_an_exception_that_does_not_unpickle_is_none() -> None:
    error = RemoteFunctionError("t", 0, "f", "E", "tb", "h", b"not a pickle")
    assert error.exception is None
    assert error.__cause__ is None


def test_a_function_that_raised_is_unpickled_when_the_user_asks(tmp_path: Path) -> None:
    trace = tmp_path / "unpickled"

    def fails() -> None:
        raise MarkerError(str(trace))

    with Runtime("localhost") as rt, pytest.raises(RemoteFunctionError) as caught:
        rt.execute_function(fails)  # the test module travels by value
    assert caught.value.exc_type.endswith("MarkerError")
    assert not trace.exists()
    assert isinstance(caught.value.__cause__, ValueError)
    assert trace.read_text() == "unpickled"
