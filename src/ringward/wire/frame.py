"""Frames: the fixed header, the body, and (for signed kinds) the signature.

Theory of operation (docs/wire-format.md):

    datagram = header (27 bytes, struct) || body || signature (64, signed kinds)

Decoding rejects on the header alone whatever it can (size, magic, version,
kind, reserved flags, sender 0, length mismatch) before touching the body;
bodies are then decoded by a fixed struct layout (DATA, the hot path) or by a
strict msgpack schema (everything else). Nothing here verifies a signature or
decrypts: the engine does that after these structural checks.

Contract: for any ``bytes``, :func:`decode` returns a :class:`Frame` or raises
:class:`~ringward.errors.WireError`; ``decode(encode(f)) == f`` and
``encode(decode(b)) == b``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

from ringward.errors import WireError
from ringward.wire import limits
from ringward.wire.codec import dump_record, pack_record, unpack_record
from ringward.wire.messages import BODY_KIND, SCHEMAS, Body, DataFrame, Kind, RingId

__all__ = [
    "HEADER",
    "MAGIC",
    "VERSION",
    "Frame",
    "Header",
    "data_nonce",
    "decode",
    "decode_nested",
    "encode",
    "encode_decoded",
    "peek",
    "signing_bytes",
]

MAGIC: Final = b"RW"
VERSION: Final = 1

# magic, version, kind, flags, cluster id, sender, ring rep, ring seq, body length
HEADER: Final = struct.Struct(">2sBBB8sHHQH")
# DATA body before its ciphertext: seq, key epoch, frame counter
DATA_PREFIX: Final = struct.Struct(">QIQ")

_KINDS: Final = frozenset(int(k) for k in Kind)
_ALL_KINDS: Final = frozenset(Kind)


@dataclass(frozen=True, slots=True)
class Frame:
    """One datagram, parsed. ``signature`` is 64 bytes for every kind but
    DATA (whose authenticity comes from the signed token listing its digest)
    and empty for DATA."""

    cluster_id: bytes
    sender: int
    ring: RingId
    body: Body
    signature: bytes = b""

    @property
    def kind(self) -> Kind:
        return BODY_KIND[type(self.body)]

    @property
    def signed(self) -> bool:
        return self.kind is not Kind.DATA


class Header(NamedTuple):
    """The fixed header of a datagram, checked on its own (:func:`peek`)."""

    kind: Kind
    cluster_id: bytes
    sender: int
    ring: RingId
    body_bytes: int

    @property
    def signed(self) -> bool:
        return self.kind is not Kind.DATA


def peek(datagram: bytes, *, max_datagram_bytes: int = limits.DATAGRAM_BYTES_MAX) -> Header:
    """The header of ``datagram``, after every check that needs no body byte
    (size, magic, version, kind, flags, node ids, length, room for a
    signature), or :class:`WireError`. Constant work: a receiver rejects an
    outsider's datagram on this and one signature check, before any body is
    decoded (docs/wire-format.md, "Order of checks")."""
    if len(datagram) > max_datagram_bytes:
        raise WireError("too_large", f"{len(datagram)} bytes > {max_datagram_bytes}")
    head = _header_of(datagram, _ALL_KINDS)
    if head.signed and head.body_bytes < limits.SIGNATURE_BYTES + 1:
        raise WireError("short_body", f"{head.kind.name} body too short for a signature")
    return head


def _header_of(data: bytes, kinds: frozenset[int]) -> Header:
    if len(data) < HEADER.size:
        raise WireError("short_header", f"{len(data)} bytes < header {HEADER.size}")
    magic, version, kind, flags, cluster_id, sender, rep, ring_seq, body_len = HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise WireError("bad_magic", f"magic {magic!r}")
    if version != VERSION:
        raise WireError("bad_version", f"version {version}")
    if kind not in _KINDS:
        raise WireError("bad_kind", f"kind {kind}")
    if kind not in kinds:
        raise WireError("kind_not_allowed", f"kind {Kind(kind).name} not allowed here")
    if flags != 0:
        raise WireError("reserved_flags", f"flags {flags:#04x} set; none are defined")
    if limits.NODE_ID_NONE in (sender, rep):
        raise WireError("bad_node_id", "node id 0 is reserved")
    if body_len != len(data) - HEADER.size:
        raise WireError(
            "bad_length", f"header says {body_len} body bytes, got {len(data) - HEADER.size}"
        )
    return Header(Kind(kind), cluster_id, sender, RingId(rep, ring_seq), body_len)


def decode(datagram: bytes, *, max_datagram_bytes: int = limits.DATAGRAM_BYTES_MAX) -> Frame:
    """Parse one datagram into a :class:`Frame` or raise :class:`WireError`.

    Structural validation only: no signature check, no decryption.
    """
    if len(datagram) > max_datagram_bytes:
        raise WireError("too_large", f"{len(datagram)} bytes > {max_datagram_bytes}")
    return _decode(bytes(datagram), _ALL_KINDS, 0)


def decode_nested(data: bytes, kinds: frozenset[int], depth: int) -> Frame:
    """Decode a frame embedded in another body (see codec.Embedded)."""
    if depth > limits.EMBED_DEPTH_MAX:
        raise WireError("too_deep", f"frames nested deeper than {limits.EMBED_DEPTH_MAX}")
    return _decode(data, kinds, depth)


def _decode(data: bytes, kinds: frozenset[int], depth: int) -> Frame:
    head = _header_of(data, kinds)
    cluster_id, sender, ring, k = head.cluster_id, head.sender, head.ring, head.kind
    if k is Kind.DATA:
        return Frame(cluster_id, sender, ring, _decode_data(data))
    end = len(data) - limits.SIGNATURE_BYTES
    if end < HEADER.size + 1:
        raise WireError("short_body", f"{k.name} body too short for a signature")
    body = unpack_record(SCHEMAS[k], data[HEADER.size : end], depth)
    return Frame(cluster_id, sender, ring, body, data[end:])


def _decode_data(data: bytes) -> DataFrame:
    start = HEADER.size + DATA_PREFIX.size
    if len(data) < start + limits.AEAD_TAG_BYTES:
        raise WireError("short_body", "DATA body shorter than its prefix and AEAD tag")
    seq, epoch, counter = DATA_PREFIX.unpack_from(data, HEADER.size)
    return DataFrame(seq, epoch, counter, data[start:])


def _body_bytes(frame: Frame) -> bytes:
    body = frame.body
    kind = frame.kind
    if isinstance(body, DataFrame):
        if len(body.ciphertext) < limits.AEAD_TAG_BYTES:
            raise WireError("short_body", "DATA ciphertext shorter than the AEAD tag")
        try:
            prefix = DATA_PREFIX.pack(body.seq, body.epoch, body.counter)
        except struct.error as exc:
            raise WireError("out_of_range", f"DataFrame: {exc}") from None
        return prefix + body.ciphertext
    return pack_record(SCHEMAS[kind], body)


def _header(frame: Frame, body_len: int) -> bytes:
    if body_len > limits.DATAGRAM_BYTES_MAX - HEADER.size:
        raise WireError("too_large", f"{frame.kind.name} body of {body_len} bytes")
    if len(frame.cluster_id) != limits.CLUSTER_ID_BYTES:
        raise WireError("bad_length", f"cluster id must be {limits.CLUSTER_ID_BYTES} bytes")
    if limits.NODE_ID_NONE in (frame.sender, frame.ring.rep):
        raise WireError("bad_node_id", "node id 0 is reserved")
    try:
        return HEADER.pack(
            MAGIC,
            VERSION,
            frame.kind,
            0,
            frame.cluster_id,
            frame.sender,
            frame.ring.rep,
            frame.ring.seq,
            body_len,
        )
    except struct.error as exc:
        raise WireError("out_of_range", f"header: {exc}") from None


def data_nonce(sender: int, counter: int) -> bytes:
    """The 12-byte AEAD nonce of a DATA frame: sender (u32) || counter (u64).
    Derived, never carried (docs/wire-format.md, DATA)."""
    return sender.to_bytes(4, "big") + counter.to_bytes(8, "big")


def signing_bytes(frame: Frame) -> bytes:
    """The bytes a signed frame's signature covers: the complete header
    (whose length field counts the signature) and the body."""
    if not frame.signed:
        raise WireError("not_signed", "DATA frames are not signed")
    body = _body_bytes(frame)
    return _header(frame, len(body) + limits.SIGNATURE_BYTES) + body


def encode_decoded(frame: Frame) -> bytes:
    """The encoding of a frame that came out of :func:`decode` (its fields
    were checked there): packed without checking them again, so re-encoding
    nested statements costs their size, not a decode per nesting level."""
    if not frame.signed:
        return encode(frame)
    body = dump_record(SCHEMAS[frame.kind], frame.body)
    return _header(frame, len(body) + limits.SIGNATURE_BYTES) + body + frame.signature


def encode(frame: Frame) -> bytes:
    """The one canonical encoding of ``frame`` (raises WireError if a field
    is out of its wire range, so nothing a peer would refuse is emitted)."""
    if not frame.signed:
        if frame.signature:
            raise WireError("bad_signature_length", "DATA frames carry no signature")
        body = _body_bytes(frame)
        return _header(frame, len(body)) + body
    if len(frame.signature) != limits.SIGNATURE_BYTES:
        raise WireError(
            "bad_signature_length",
            f"signature must be {limits.SIGNATURE_BYTES} bytes, got {len(frame.signature)}",
        )
    return signing_bytes(frame) + frame.signature
