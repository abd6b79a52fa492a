"""The ringward byte format: frames, typed bodies, strict decoding.

``decode(datagram) -> Frame`` and ``encode(frame) -> bytes`` are the whole
interface; docs/wire-format.md documents every byte.
"""

from ringward.wire import limits
from ringward.wire.batch import BatchEntry, decode_batch, encode_batch
from ringward.wire.frame import HEADER, MAGIC, VERSION, Frame, decode, encode, signing_bytes
from ringward.wire.messages import (
    Accusation,
    Body,
    CommitMember,
    CommitToken,
    DataFrame,
    FrameRef,
    Join,
    Kind,
    LoadReport,
    Proof,
    RingId,
    SealedKey,
    Token,
    TokenRequest,
)

__all__ = [
    "HEADER",
    "MAGIC",
    "VERSION",
    "Accusation",
    "BatchEntry",
    "Body",
    "CommitMember",
    "CommitToken",
    "DataFrame",
    "Frame",
    "FrameRef",
    "Join",
    "Kind",
    "LoadReport",
    "Proof",
    "RingId",
    "SealedKey",
    "Token",
    "TokenRequest",
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
    "limits",
    "signing_bytes",
]
