"""The agent protocol's frames: round trips, and clear errors for broken streams."""

from __future__ import annotations

import io
import pickle
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorcluster.remote.agent.frames import (
    HEADER,
    MAGIC,
    MAX_BODY,
    VERSION,
    FrameError,
    FrameReader,
    Kind,
    encode_frame,
)

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64) + 1, 2**64 - 1)  # frames carry 64-bit integers
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(st.text(max_size=10), plain, max_size=6)
kinds = st.sampled_from(list(Kind))
request_ids = st.integers(min_value=0, max_value=2**64 - 1)


def _reader(data: bytes, chunk: int = 7) -> FrameReader:
    stream = io.BytesIO(data)
    return FrameReader(lambda size: stream.read(min(size, chunk)), chunk=chunk)


@given(st.lists(st.tuples(kinds, request_ids, payloads), max_size=5), st.integers(1, 64))
def test_frames_survive_encode_and_decode_in_any_chunking(frames, chunk):
    data = b"".join(encode_frame(kind, rid, payload) for kind, rid, payload in frames)
    reader = _reader(data, chunk)
    decoded = [reader.read_frame() for _ in frames]
    assert [(f.kind, f.request_id, f.payload) for f in decoded if f] == [
        (int(kind), rid, payload) for kind, rid, payload in frames
    ]
    assert reader.read_frame() is None


@given(kinds, request_ids, payloads, st.data())
def test_a_truncated_frame_is_a_protocol_error_not_a_hang(kind, rid, payload, data):
    frame = encode_frame(kind, rid, payload)
    cut = data.draw(st.integers(min_value=1, max_value=len(frame) - 1))
    with pytest.raises(FrameError, match="stream ended inside a frame"):
        _reader(frame[:cut]).read_frame()


@given(kinds, request_ids, payloads, st.data())
def test_a_corrupted_byte_is_a_protocol_error(kind, rid, payload, data):
    frame = bytearray(encode_frame(kind, rid, payload))
    position = data.draw(st.sampled_from([0, 1, 2, *range(HEADER.size, len(frame))]))
    frame[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(FrameError):
        _reader(bytes(frame)).read_frame()


def test_an_oversized_length_is_refused_before_reading_the_body():
    header = HEADER.pack(MAGIC, VERSION, Kind.RUN, 1, MAX_BODY + 1, 0)
    with pytest.raises(FrameError, match="exceeds"):
        _reader(header).read_frame()


def test_a_body_naming_a_class_is_refused():
    body = pickle.dumps({"x": zlib.compressobj}, protocol=4)
    header = HEADER.pack(MAGIC, VERSION, Kind.RESULT, 1, len(body), zlib.crc32(body))
    with pytest.raises(FrameError, match="only plain data"):
        _reader(header + body).read_frame()


def test_a_stream_ending_between_frames_is_a_clean_end():
    assert _reader(b"").read_frame() is None
