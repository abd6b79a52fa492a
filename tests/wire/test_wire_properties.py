"""Property tests of the wire contract: total decoding, canonical round-trips."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ringward.errors import WireError
from ringward.wire import HEADER, MAGIC, VERSION, Frame, Kind, decode, encode, limits
from ringward.wire.codec import pack_record, unpack_record
from ringward.wire.messages import SCHEMAS

from wire_strategies import frames, msgpack_values

SLOW = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(frames())
def test_decode_encode_roundtrip(frame: Frame) -> None:
    data = encode(frame)
    assert decode(data) == frame
    assert encode(decode(data)) == data


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_roundtrips(kind: Kind, data: st.DataObject) -> None:
    frame = data.draw(frames(kind))
    assert frame.kind is kind
    assert decode(encode(frame)) == frame


def _assert_total(data: bytes) -> None:
    """The contract: a Frame whose encoding is exactly ``data``, or WireError."""
    try:
        frame = decode(data)
    except WireError as exc:
        assert exc.reason and exc.reason == exc.reason.lower()
        return
    assert encode(frame) == data


@settings(max_examples=2000)
@given(st.binary(max_size=600))
def test_any_bytes_decode_or_wireerror(data: bytes) -> None:
    _assert_total(data)


@settings(max_examples=1000)
@given(st.binary(max_size=400))
def test_any_bytes_behind_a_valid_header(body: bytes) -> None:
    # Random bytes pass the header and reach the body parsers.
    for kind in Kind:
        header = HEADER.pack(MAGIC, VERSION, kind, 0, b"\0" * 8, 1, 1, 0, len(body))
        _assert_total(header + body)


@SLOW
@given(frames(), st.data())
def test_mutations_of_valid_frames(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode(frame))
    op = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if op == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    elif op == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=20))
    else:
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    _assert_total(bytes(raw))


@pytest.mark.parametrize("kind", [k for k in Kind if k is not Kind.DATA], ids=lambda k: k.name)
@settings(max_examples=200)
@given(value=msgpack_values())
def test_arbitrary_msgpack_bodies(kind: Kind, value: Any) -> None:
    packed = msgpack.packb(value, use_bin_type=True)
    try:
        body = unpack_record(SCHEMAS[kind], packed)
    except WireError:
        return
    assert pack_record(SCHEMAS[kind], body) == packed


def _replace_body_map(frame: Frame, mutate: Callable[[dict[str, Any]], bytes]) -> bytes:
    """Re-pack a signed frame's body map after ``mutate(dict)``, fixing up the
    header length, so only the body's encoding differs."""
    data = encode(frame)
    obj = msgpack.unpackb(data[HEADER.size : -limits.SIGNATURE_BYTES], raw=False)
    body = mutate(obj)
    header = bytearray(data[: HEADER.size])
    struct.pack_into(">H", header, HEADER.size - 2, len(body) + limits.SIGNATURE_BYTES)
    return bytes(header) + body + frame.signature


@SLOW
@given(frames(Kind.TOKEN))
def test_reordered_keys_are_noncanonical(frame: Frame) -> None:
    def reverse(obj: dict[str, Any]) -> bytes:
        packed: bytes = msgpack.packb(dict(reversed(list(obj.items()))), use_bin_type=True)
        return packed

    with pytest.raises(WireError) as info:
        decode(_replace_body_map(frame, reverse))
    assert info.value.reason == "noncanonical"


@SLOW
@given(frames(Kind.TOKEN_REQUEST))
def test_wide_integers_are_noncanonical(frame: Frame) -> None:
    def widen(obj: dict[str, Any]) -> bytes:
        # hop as uint64 regardless of its value: a valid msgpack encoding of
        # the same integer, but not the shortest one.
        assume(obj["hop"] < 1 << 32)
        return b"\x81\xa3hop\xcf" + struct.pack(">Q", obj["hop"])

    with pytest.raises(WireError) as info:
        decode(_replace_body_map(frame, widen))
    assert info.value.reason == "noncanonical"


def test_duplicate_keys_are_refused() -> None:
    # {"hop": 1, "hop": 2}: msgpack keeps the last; the canonical check must
    # refuse rather than silently pick one.
    body = b"\x82\xa3hop\x01\xa3hop\x02"
    with pytest.raises(WireError):
        unpack_record(SCHEMAS[Kind.TOKEN_REQUEST], body)


def test_encode_refuses_out_of_range_fields() -> None:
    from ringward.wire import vectors

    token = vectors.frames()["token"]
    assert isinstance(token.body, type(token.body))
    bad = dataclasses.replace(token, body=dataclasses.replace(token.body, seq=-1))  # type: ignore[arg-type]
    with pytest.raises(WireError) as info:
        encode(bad)
    assert info.value.reason == "out_of_range"
