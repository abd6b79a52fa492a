"""The batch format inside DATA frames: strict, total, canonical."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.errors import WireError
from ringward.wire import BatchEntry, decode_batch, encode_batch, vectors
from ringward.wire.batch import COUNT, ENTRY_HEADER

from wire_strategies import batch_entries


@given(st.lists(batch_entries(), min_size=1, max_size=6))
def test_roundtrip(entries: list[BatchEntry]) -> None:
    data = encode_batch(entries)
    assert decode_batch(data) == tuple(entries)


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_wireerror(data: bytes) -> None:
    try:
        entries = decode_batch(data)
    except WireError:
        return
    assert encode_batch(entries) == data


def test_vector_batch() -> None:
    data = encode_batch(vectors.BATCH)
    assert data.hex() == (
        "0002"
        "0000000000000001"
        "0000"
        "0001"
        "00"
        "0005"
        "68656c6c6f"
        "0000000000000002"
        "0000"
        "0002"
        "01"
        "000a"
        "66697273742068616c66"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short_batch"),
        (b"\x00", "short_batch"),
        (b"\x00\x00", "bad_count"),
        (COUNT.pack(0xFFFF) + b"\0" * 20, "bad_count"),
        (COUNT.pack(1) + ENTRY_HEADER.pack(1, 0, 1, 0x04, 0), "reserved_flags"),
        (COUNT.pack(1) + ENTRY_HEADER.pack(1, 1, 1, 0, 0), "bad_fragment"),
        (COUNT.pack(1) + ENTRY_HEADER.pack(1, 0, 0, 0, 0), "bad_fragment"),
        (COUNT.pack(1) + ENTRY_HEADER.pack(1, 0, 1, 0, 5) + b"abc", "short_batch"),
        (COUNT.pack(1) + ENTRY_HEADER.pack(1, 0, 1, 0, 1) + b"ab", "trailing_bytes"),
        (COUNT.pack(2) + ENTRY_HEADER.pack(1, 0, 1, 0, 0) + b"\0" * 14, "bad_count"),
        (
            COUNT.pack(2) + ENTRY_HEADER.pack(1, 0, 1, 0, 0) + ENTRY_HEADER.pack(2, 0, 1, 0, 5),
            "short_batch",
        ),
    ],
)
def test_rejections(data: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode_batch(data)
    assert info.value.reason == reason


def test_encode_refuses_bad_entries() -> None:
    with pytest.raises(WireError):
        encode_batch([])
    with pytest.raises(WireError):
        encode_batch([BatchEntry(1, 2, 2, False, b"")])
    with pytest.raises(WireError):
        encode_batch([BatchEntry(1, 0, 1, False, b"x" * 70000)])
    with pytest.raises(WireError):
        encode_batch([BatchEntry(-1, 0, 1, False, b"")])
