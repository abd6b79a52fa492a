"""Example-based tests of the decoder's rejections: each cheap header check
fires with its reason, before the body is parsed."""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import pytest

from ringward.errors import RingwardError, WireError
from ringward.wire import HEADER, Frame, Join, Kind, Proof, decode, encode, limits, vectors

TOKEN = encode(vectors.frames()["token"])
DATA = encode(vectors.frames()["data"])


def _with_header_field(data: bytes, index: int, value: object) -> bytes:
    fields = list(HEADER.unpack_from(data))
    fields[index] = value
    return HEADER.pack(*fields) + data[HEADER.size :]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short_header"),
        (TOKEN[: HEADER.size - 1], "short_header"),
        (_with_header_field(TOKEN, 0, b"XX"), "bad_magic"),
        (_with_header_field(TOKEN, 1, 2), "bad_version"),
        (_with_header_field(TOKEN, 2, 0), "bad_kind"),
        (_with_header_field(TOKEN, 2, 200), "bad_kind"),
        (_with_header_field(TOKEN, 3, 0x80), "reserved_flags"),
        (_with_header_field(TOKEN, 5, 0), "bad_node_id"),
        (_with_header_field(TOKEN, 6, 0), "bad_node_id"),
        (_with_header_field(TOKEN, 8, len(TOKEN) - HEADER.size + 1), "bad_length"),
        (TOKEN + b"\0", "bad_length"),
        (TOKEN[:-1], "bad_length"),
        (DATA[: HEADER.size + 20], "bad_length"),
    ],
)
def test_header_rejections(data: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(data)
    assert info.value.reason == reason
    assert isinstance(info.value, RingwardError)


def test_oversize_rejected_before_parsing() -> None:
    with pytest.raises(WireError) as info:
        decode(b"\0" * 1500, max_datagram_bytes=1400)
    assert info.value.reason == "too_large"
    with pytest.raises(WireError) as info:
        decode(b"\0" * (limits.DATAGRAM_BYTES_MAX + 1))
    assert info.value.reason == "too_large"


def test_data_frame_needs_room_for_the_aead_tag() -> None:
    header = HEADER.pack(b"RW", 1, Kind.DATA, 0, b"\0" * 8, 1, 1, 0, 20 + 15)
    with pytest.raises(WireError) as info:
        decode(header + b"\0" * 35)
    assert info.value.reason == "short_body"


def test_signed_frame_too_short_for_signature() -> None:
    header = HEADER.pack(b"RW", 1, Kind.TOKEN, 0, b"\0" * 8, 1, 1, 0, 64)
    with pytest.raises(WireError) as info:
        decode(header + b"\0" * 64)
    assert info.value.reason == "short_body"


def _signed(kind: Kind, body: bytes) -> bytes:
    header = HEADER.pack(b"RW", 1, kind, 0, b"\0" * 8, 1, 1, 0, len(body) + 64)
    return header + body + b"\x01" * 64


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (msgpack.packb({"hop": 1.0}), "bad_type"),
        (msgpack.packb({"hop": True}), "bad_type"),
        (msgpack.packb({"hop": -1}), "out_of_range"),
        (msgpack.packb({"hop": 1, "x": 2}), "bad_fields"),
        (msgpack.packb({}), "bad_fields"),
        (msgpack.packb([1]), "bad_type"),
        (msgpack.packb({"hop": 1}) + b"\0", "bad_msgpack"),
        (b"\xc7\x01\x05\x00", "bad_msgpack"),  # ext type
        (b"\x81\xa3hop", "bad_msgpack"),  # truncated
        (b"\x81\xa3h\xffp\x01", "bad_msgpack"),  # invalid UTF-8 key
    ],
)
def test_body_rejections(body: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(_signed(Kind.TOKEN_REQUEST, body))
    assert info.value.reason == reason


def test_ascending_sets_are_enforced() -> None:
    join = vectors.frames()["join"]
    raw = encode(join)
    obj = msgpack.unpackb(raw[HEADER.size : -64])
    obj["proc"] = [3, 1]
    with pytest.raises(WireError) as info:
        decode(_signed(Kind.JOIN, msgpack.packb(obj)))
    assert info.value.reason == "not_ascending"


def test_embedded_frame_kinds_are_restricted() -> None:
    # A proof may carry tokens, joins and commits, never DATA or another proof.
    proof = vectors.frames()["proof"]
    obj = msgpack.unpackb(encode(proof)[HEADER.size : -64])
    obj["statements"] = [DATA]
    with pytest.raises(WireError) as info:
        decode(_signed(Kind.PROOF, msgpack.packb(obj)))
    assert info.value.reason == "kind_not_allowed"


def test_embedding_depth_is_bounded() -> None:
    # join > proof > join > proof > token is one level too deep.
    frames = vectors.frames()
    proof, join = frames["proof"], frames["join"]
    nested: Frame = join
    assert isinstance(proof.body, Proof) and isinstance(join.body, Join)
    for _ in range(limits.EMBED_DEPTH_MAX):
        nested = Frame(
            join.cluster_id, 1, join.ring, Proof(2, "equivocation", (nested,)), join.signature
        )
        nested = Frame(
            join.cluster_id, 1, join.ring, Join(1, (1,), (), (nested,), ()), join.signature
        )
    # Building it is refused too: encode validates what it emits.
    with pytest.raises(WireError) as info:
        encode(nested)
    assert info.value.reason == "too_deep"


def test_count_header_cannot_force_allocation() -> None:
    # An array header claiming 2**32-1 elements in a tiny datagram: refused,
    # and decoding allocates a small multiple of the input, not of the claim.
    body = msgpack.packb({"hop": 1})[:-1] + b"\xdd\xff\xff\xff\xff"
    tracemalloc.start()
    try:
        with pytest.raises(WireError):
            decode(_signed(Kind.TOKEN_REQUEST, body))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_decode_memory_is_a_small_multiple_of_input() -> None:
    # The largest legal datagram full of tiny list items.
    items = limits.RTR_ENTRIES_MAX
    token = vectors.frames()["token"]
    obj = msgpack.unpackb(encode(token)[HEADER.size : -64])
    obj["rtr"] = list(range(items))
    raw = _signed(Kind.TOKEN, msgpack.packb(obj))
    decode(raw)  # warm: first use compiles patterns, fills caches
    tracemalloc.start()
    try:
        decode(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured ~16x (the unpacked objects plus the canonical re-pack).
    assert peak < 40 * len(raw)


def test_header_layout_is_27_bytes() -> None:
    assert HEADER.size == 27
    assert struct.calcsize(">2sBBB8sHHQH") == HEADER.size


def test_kind_property_and_signed_flag() -> None:
    for name, frame in vectors.frames().items():
        assert frame.kind.name.lower() == name
        assert frame.signed == (frame.kind is not Kind.DATA)
        assert len(frame.signature) == (64 if frame.signed else 0)


def test_encode_refuses_wrong_signature_length() -> None:
    token = vectors.frames()["token"]
    with pytest.raises(WireError) as info:
        encode(Frame(token.cluster_id, token.sender, token.ring, token.body, b"short"))
    assert info.value.reason == "bad_signature_length"
    data = vectors.frames()["data"]
    with pytest.raises(WireError):
        encode(Frame(data.cluster_id, data.sender, data.ring, data.body, b"x" * 64))
