"""Deterministic test vectors: one frame of every kind (and a batch).

docs/wire-format.md prints their encodings in hex; tests check that the
document, this module and the codec agree byte for byte. Signatures and
ciphertexts here are fixed filler bytes: the wire layer neither signs nor
decrypts, it only has to carry them exactly.
"""

from __future__ import annotations

from ringward.wire.batch import BatchEntry
from ringward.wire.frame import Frame
from ringward.wire.messages import (
    Accusation,
    CommitMember,
    CommitToken,
    DataFrame,
    FrameRef,
    Join,
    LoadReport,
    Proof,
    RingId,
    SealedKey,
    Token,
    TokenRequest,
)

__all__ = ["BATCH", "CLUSTER_ID", "all_frames", "frames"]

CLUSTER_ID = bytes.fromhex("c1a55e5c0ffee001")
RING = RingId(rep=1, seq=42)
SIG = bytes(range(64))  # stands in for an Ed25519 signature


def _token(hop: int, sender_seq: int) -> Token:
    return Token(
        hop=hop,
        succ=3,
        seq=sender_seq,
        aru=sender_seq - 2,
        aru_id=0,
        rtr=(sender_seq - 1,),
        fcc=2,
        backlog=5,
        frames=(FrameRef(seq=sender_seq, digest=bytes([0xD1]) * 32),),
        prev=bytes([0xAB]) * 32,
        load=LoadReport(backlog=5, rx_queue=0, hold_ms=1, memory_permille=12),
    )


def frames() -> dict[str, Frame]:
    """Name → frame, in the order docs/wire-format.md lists them."""
    token = Frame(CLUSTER_ID, 2, RING, _token(hop=7, sender_seq=100), SIG)
    token_b = Frame(CLUSTER_ID, 2, RING, _token(hop=7, sender_seq=101), SIG)
    accusation = Frame(
        CLUSTER_ID, 1, RING, Accusation(target=3, hop=7, signal="token_loss", score=1500), SIG
    )
    proof = Frame(
        CLUSTER_ID, 1, RING, Proof(target=2, kind="equivocation", statements=(token, token_b)), SIG
    )
    join = Frame(
        CLUSTER_ID,
        1,
        RING,
        Join(ring_seq=42, proc=(1, 3), fail=(2,), proofs=(proof,), accusations=(accusation,)),
        SIG,
    )
    plain_join = Frame(
        CLUSTER_ID,
        3,
        RING,
        Join(ring_seq=42, proc=(1, 3), fail=(2,), proofs=(), accusations=()),
        SIG,
    )
    commit = Frame(
        CLUSTER_ID,
        1,
        RingId(rep=1, seq=46),
        CommitToken(
            hop=0,
            members=(
                CommitMember(1, RING, aru=98, high_seq=100, high_delivered=98, received_flg=True),
                CommitMember(3, RING, aru=98, high_seq=99, high_delivered=97, received_flg=False),
            ),
            keys=(SealedKey(1, bytes([0x51]) * 80), SealedKey(3, bytes([0x53]) * 80)),
            key_commit=bytes([0xCC]) * 32,
            cert=(plain_join,),
        ),
        SIG,
    )
    data = Frame(
        CLUSTER_ID, 2, RING, DataFrame(seq=100, epoch=0, counter=9, ciphertext=bytes(range(40)))
    )
    request = Frame(CLUSTER_ID, 3, RING, TokenRequest(hop=7), SIG)
    return {
        "data": data,
        "token": token,
        "join": join,
        "commit": commit,
        "accusation": accusation,
        "proof": proof,
        "token_request": request,
    }


def all_frames() -> list[Frame]:
    return list(frames().values())


BATCH = (
    BatchEntry(msg_no=1, frag_index=0, frag_count=1, safe=False, payload=b"hello"),
    BatchEntry(msg_no=2, frag_index=0, frag_count=2, safe=True, payload=b"first half"),
)


def hex_lines(data: bytes, width: int = 32) -> list[str]:
    """``data`` as hex, ``width`` bytes per line (the layout of the docs)."""
    return [data[i : i + width].hex() for i in range(0, len(data), width)]


def markdown() -> str:
    """The test-vector section of docs/wire-format.md, regenerated."""
    from ringward.wire.batch import encode_batch
    from ringward.wire.frame import encode

    out: list[str] = []
    items = [(name, encode(f)) for name, f in frames().items()]
    items.append(("batch", encode_batch(BATCH)))
    for name, data in items:
        out += [f"#### vector `{name}` ({len(data)} bytes)", "", "```hex"]
        out += hex_lines(data)
        out += ["```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
