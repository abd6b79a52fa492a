"""The typed bodies of every message kind, and their strict schemas.

Each body is a frozen, slotted dataclass; one vocabulary on both sides of the
wire. Field names follow Totem (seq, aru, aru_id, rtr, proc and fail sets) so
readers of the paper feel at home. docs/wire-format.md lists every field.

The header (sender, ring id) is not repeated in bodies: it is covered by the
signature of every signed frame, so a body never has to agree with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ringward.wire import limits
from ringward.wire.codec import Bool, Bytes, Embedded, List, Record, Text, UInt

if TYPE_CHECKING:
    from ringward.wire.frame import Frame

__all__ = [
    "Accusation",
    "Body",
    "CommitMember",
    "CommitToken",
    "DataFrame",
    "FrameRef",
    "Join",
    "Kind",
    "LoadReport",
    "Proof",
    "RingId",
    "SealedKey",
    "Token",
    "TokenRequest",
]


class Kind(enum.IntEnum):
    """Message kind, the header's fourth byte."""

    DATA = 1
    TOKEN = 2
    JOIN = 3
    COMMIT = 4
    ACCUSATION = 5
    PROOF = 6
    TOKEN_REQUEST = 7


@dataclass(frozen=True, slots=True, order=True)
class RingId:
    """A ring (configuration) identity: its representative and a sequence
    number that never repeats (Totem's ``memb_ring_id``)."""

    rep: int
    seq: int


@dataclass(frozen=True, slots=True)
class DataFrame:
    """An encrypted batch of payload fragments. Fixed binary layout (not
    msgpack): this is the hot path.

    ``seq`` is the global sequence number the token holder assigned;
    ``epoch`` names the group key generation within the ring; ``counter`` is
    the sender's frame counter under that key (with the sender id it forms
    the AEAD nonce, so the nonce is derived, never carried).
    """

    seq: int
    epoch: int
    counter: int
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One data frame originated during a token visit: its seq and the
    BLAKE2b-256 digest of its complete datagram bytes."""

    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The holder's signed self-measurement of pressure (overload evidence)."""

    backlog: int  # payloads submitted locally, not yet broadcast
    rx_queue: int  # datagrams received, not yet processed
    hold_ms: int  # how long it held this token
    memory_permille: int  # buffer memory in use, per mille of the budget
    # Of the signer's own last 2k - 1 reports (k = overload_reports; one
    # per token it made, one per membership round of joins), this one
    # included, how many were over the limits: an overload proof needs the
    # signer to have said it was overloaded k times lately, not k reports
    # from far apart (evidence.py).
    recent_over: int = 0


@dataclass(frozen=True, slots=True)
class Token:
    """The regular token, signed by its holder and broadcast to every member.

    ``hop`` counts token visits in this ring (the position in the chain);
    ``prev`` is the BLAKE2b-256 of the previous token's complete frame.
    """

    hop: int
    succ: int
    seq: int
    aru: int
    aru_id: int
    rtr: tuple[int, ...]
    fcc: int
    backlog: int
    frames: tuple[FrameRef, ...]
    prev: bytes
    load: LoadReport


@dataclass(frozen=True, slots=True)
class Join:
    """A Gather-state join: the sender's proposed membership, what started
    its round (``cause``: the node whose join did, 0 for its own reason),
    and its load, signed as in a token (a member too slow to forward any
    token or commit still sends joins: overload evidence)."""

    ring_seq: int
    proc: tuple[int, ...]
    fail: tuple[int, ...]
    proofs: tuple[Frame, ...]
    accusations: tuple[Frame, ...]
    cause: int = 0
    load: LoadReport = LoadReport(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class CommitMember:
    """One member's old-ring state in a commit token (Totem's
    ``memb_commit_token_memb_entry``)."""

    node: int
    old_ring: RingId
    aru: int
    high_seq: int
    high_delivered: int
    received_flg: bool


@dataclass(frozen=True, slots=True)
class SealedKey:
    """The new group key sealed to one member's X25519 key."""

    node: int
    sealed: bytes


@dataclass(frozen=True, slots=True)
class CommitToken:
    """The commit token that forms a new ring; it rotates twice.

    ``cert`` holds the signed joins that agree on the membership, so anyone
    can check the consensus; ``key_commit`` commits to the new group key so
    members detect a representative that hands out different keys.
    """

    hop: int
    members: tuple[CommitMember, ...]
    keys: tuple[SealedKey, ...]
    key_commit: bytes
    cert: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Accusation:
    """A signed, unprovable suspicion: ``target`` scored ``score`` (milli-
    units) on ``signal`` at token position ``hop``."""

    target: int
    hop: int
    signal: str
    score: int


@dataclass(frozen=True, slots=True)
class Proof:
    """Transferable evidence: the target's own signed statements that
    convict it of ``kind`` (``equivocation``, ``overload``, ``rule:<name>``)."""

    target: int
    kind: str
    statements: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Ask the ring for the token at position ``hop`` (every member checks
    every transition of the chain, so a missed broadcast token is fetched)."""

    hop: int


Body = DataFrame | Token | Join | CommitToken | Accusation | Proof | TokenRequest

U16 = UInt(16)
U32 = UInt(32)
U64 = UInt(64)
NODE = UInt(16, minimum=1)
NAME = r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?"


def _embedded(kinds: set[Kind]) -> Embedded:
    return Embedded(frozenset(kinds), limits.DATAGRAM_BYTES_MAX)


RING_SPEC = Record(RingId, (("rep", NODE), ("seq", U64)), as_map=False)
LOAD_SPEC = Record(
    LoadReport,
    (
        ("backlog", U32),
        ("rx_queue", U32),
        ("hold_ms", U32),
        ("memory_permille", U16),
        ("recent_over", U16),
    ),
    as_map=False,
)

SCHEMAS: dict[Kind, Record[Any]] = {
    Kind.TOKEN: Record(
        Token,
        (
            ("hop", U64),
            ("succ", NODE),
            ("seq", U64),
            ("aru", U64),
            ("aru_id", U16),
            ("rtr", List(U64, limits.RTR_ENTRIES_MAX, ascending=True)),
            ("fcc", U32),
            ("backlog", U32),
            (
                "frames",
                List(
                    Record(
                        FrameRef,
                        (("seq", U64), ("digest", Bytes(limits.DIGEST_BYTES, limits.DIGEST_BYTES))),
                        as_map=False,
                    ),
                    limits.TOKEN_FRAMES_MAX,
                ),
            ),
            ("prev", Bytes(limits.DIGEST_BYTES, limits.DIGEST_BYTES)),
            ("load", LOAD_SPEC),
        ),
    ),
    Kind.JOIN: Record(
        Join,
        (
            ("ring_seq", U64),
            ("proc", List(NODE, limits.NODES_MAX, count_min=1, ascending=True)),
            ("fail", List(NODE, limits.NODES_MAX, ascending=True)),
            ("proofs", List(_embedded({Kind.PROOF}), limits.JOIN_PROOFS_MAX)),
            ("accusations", List(_embedded({Kind.ACCUSATION}), limits.JOIN_ACCUSATIONS_MAX)),
            ("cause", U16),
            ("load", LOAD_SPEC),
        ),
    ),
    Kind.COMMIT: Record(
        CommitToken,
        (
            ("hop", U32),
            (
                "members",
                List(
                    Record(
                        CommitMember,
                        (
                            ("node", NODE),
                            ("old_ring", RING_SPEC),
                            ("aru", U64),
                            ("high_seq", U64),
                            ("high_delivered", U64),
                            ("received_flg", Bool()),
                        ),
                        as_map=False,
                    ),
                    limits.NODES_MAX,
                    count_min=1,
                ),
            ),
            (
                "keys",
                List(
                    Record(
                        SealedKey,
                        (
                            ("node", NODE),
                            (
                                "sealed",
                                Bytes(limits.SEALED_KEY_BYTES_MIN, limits.SEALED_KEY_BYTES_MAX),
                            ),
                        ),
                        as_map=False,
                    ),
                    limits.NODES_MAX,
                ),
            ),
            ("key_commit", Bytes(limits.DIGEST_BYTES, limits.DIGEST_BYTES)),
            ("cert", List(_embedded({Kind.JOIN}), limits.NODES_MAX)),
        ),
    ),
    Kind.ACCUSATION: Record(
        Accusation,
        (
            ("target", NODE),
            ("hop", U64),
            ("signal", Text(NAME, limits.NAME_CHARS_MAX)),
            ("score", U32),
        ),
    ),
    Kind.PROOF: Record(
        Proof,
        (
            ("target", NODE),
            ("kind", Text(NAME, limits.NAME_CHARS_MAX)),
            (
                "statements",
                List(
                    _embedded({Kind.TOKEN, Kind.JOIN, Kind.COMMIT}),
                    limits.PROOF_STATEMENTS_MAX,
                    count_min=1,
                ),
            ),
        ),
    ),
    Kind.TOKEN_REQUEST: Record(TokenRequest, (("hop", U64),)),
}

BODY_KIND: dict[type[Any], Kind] = {DataFrame: Kind.DATA} | {
    schema.cls: kind for kind, schema in SCHEMAS.items()
}
