"""The plaintext inside a DATA frame: a batch of payload fragments.

Layout (docs/wire-format.md, "Batch"): ``count:u16`` then ``count`` entries,
each ``msg_no:u64 frag_index:u16 frag_count:u16 flags:u8 length:u16`` and
``length`` payload bytes. Fixed struct layout because this is the hot path:
one frame carries many small messages, or one fragment of a large one.

The batch is decrypted plaintext, but a Byzantine member can encrypt any
bytes it likes under the group key, so this parser is as strict and total as
the frame decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ringward.errors import WireError
from ringward.wire.fastnew import slot_setters

__all__ = [
    "ENTRY_HEADER",
    "FLAG_RECOVERED",
    "FLAG_SAFE",
    "BatchEntry",
    "decode_batch",
    "encode_batch",
]

COUNT: Final = struct.Struct(">H")
ENTRY_HEADER: Final = struct.Struct(">QHHBH")
FLAG_SAFE: Final = 0x01
# The payload is a complete DATA frame of an old ring, re-broadcast during
# membership recovery (Totem's encapsulated retransmission).
FLAG_RECOVERED: Final = 0x02
_FLAGS_KNOWN: Final = FLAG_SAFE | FLAG_RECOVERED


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One payload, or one fragment of a payload too large for a datagram.

    ``msg_no`` numbers the sender's messages; fragments of one message share
    it and are numbered ``frag_index`` in ``0..frag_count-1``.
    """

    msg_no: int
    frag_index: int
    frag_count: int
    safe: bool
    payload: bytes
    recovered: bool = False

    @property
    def flags(self) -> int:
        return (FLAG_SAFE if self.safe else 0) | (FLAG_RECOVERED if self.recovered else 0)


_NEW = object.__new__
_MSG_NO, _FRAG_INDEX, _FRAG_COUNT, _SAFE, _PAYLOAD, _RECOVERED = slot_setters(BatchEntry)


def new_entry(
    msg_no: int, frag_index: int, frag_count: int, safe: bool, payload: bytes, recovered: bool
) -> BatchEntry:
    """``BatchEntry(...)`` built faster: one per message at the
    sender and at every receiver (ringward.wire.fastnew)."""
    e = _NEW(BatchEntry)
    _MSG_NO(e, msg_no)
    _FRAG_INDEX(e, frag_index)
    _FRAG_COUNT(e, frag_count)
    _SAFE(e, safe)
    _PAYLOAD(e, payload)
    _RECOVERED(e, recovered)
    return e


def encode_batch(entries: Sequence[BatchEntry]) -> bytes:
    """Encode a non-empty batch (raises WireError on out-of-range fields)."""
    if not 1 <= len(entries) <= 0xFFFF:
        raise WireError("bad_count", f"batch of {len(entries)} entries")
    parts = [COUNT.pack(len(entries))]
    for e in entries:
        _check_fragment(e.frag_index, e.frag_count)
        try:
            parts.append(
                ENTRY_HEADER.pack(e.msg_no, e.frag_index, e.frag_count, e.flags, len(e.payload))
            )
        except struct.error as exc:
            raise WireError("out_of_range", f"batch entry: {exc}") from None
        parts.append(e.payload)
    return b"".join(parts)


def decode_batch(data: bytes) -> tuple[BatchEntry, ...]:
    """Parse a batch or raise WireError. Total: every length is checked
    against the bytes that remain before it is used."""
    if len(data) < COUNT.size:
        raise WireError("short_batch", "batch shorter than its count")
    (count,) = COUNT.unpack_from(data)
    if count == 0:
        raise WireError("bad_count", "empty batch")
    # Each entry needs at least its header: reject an absurd count before
    # allocating anything for it.
    if count * ENTRY_HEADER.size > len(data) - COUNT.size:
        raise WireError("bad_count", f"{count} entries cannot fit {len(data)} bytes")
    offset, end = COUNT.size, len(data)
    out: list[BatchEntry] = []
    # One pass per message at every receiver: locals, no helper calls.
    unpack, header_size, make = ENTRY_HEADER.unpack_from, ENTRY_HEADER.size, new_entry
    for i in range(count):
        if end - offset < header_size:
            raise WireError("short_batch", f"entry {i}: truncated header")
        msg_no, frag_index, frag_count, flags, length = unpack(data, offset)
        offset += header_size
        if flags & ~_FLAGS_KNOWN:
            raise WireError("reserved_flags", f"entry {i}: flags {flags:#04x}")
        if not 0 <= frag_index < frag_count:
            raise WireError("bad_fragment", f"fragment {frag_index} of {frag_count}")
        if end - offset < length:
            raise WireError("short_batch", f"entry {i}: payload truncated")
        stop = offset + length
        out.append(
            make(
                msg_no,
                frag_index,
                frag_count,
                (flags & FLAG_SAFE) != 0,
                data[offset:stop],
                (flags & FLAG_RECOVERED) != 0,
            )
        )
        offset = stop
    if offset != end:
        raise WireError("trailing_bytes", f"{end - offset} bytes after the last entry")
    return tuple(out)


def _check_fragment(index: int, count: int) -> None:
    if not 0 <= index < count:
        raise WireError("bad_fragment", f"fragment {index} of {count}")
