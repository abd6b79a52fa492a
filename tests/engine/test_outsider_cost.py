"""An outsider's datagram costs a header check and at most one signature
verification, whatever its body holds (issue 14, finding 5).

Before, ``Engine.receive`` decoded the whole frame, nested statements
included, before looking at the cluster id, the sender or the signature, and
the canonical check re-packed nested bodies about 2^depth times: a crafted
65 KB datagram cost 230-700 ms of CPU. Work is counted here (line events in
ringward code, tests/ring_harness.py), never timed; benchmarks/outsider_cost.py
has the timings.
"""

from __future__ import annotations

from unittest import mock

import pytest

from ring_harness import line_budget
from ringward.engine import Engine
from ringward.sim.keys import SimKeys
from ringward.wire import (
    HEADER,
    CommitMember,
    CommitToken,
    Frame,
    Join,
    Proof,
    RingId,
    decode,
    encode,
    limits,
)
from ringward.wire import frame as wire_frame

ROSTER = (1, 2, 3, 4)
KEYS = SimKeys(3, ROSTER)
CLUSTER = bytes(range(8))
FAKE_SIG = bytes([0xA5]) * limits.SIGNATURE_BYTES
ENTRY = CommitMember(1, RingId(1, 0), 0, 0, 0, False)
# Line events receive() may spend on a datagram it refuses: the header, the
# refusal, and the signature call (which runs in C).
REFUSE_LINES_MAX = 200


def nested(entries_per_commit: int, cluster: bytes = CLUSTER, sender: int = 2) -> bytes:
    """proof -> joins -> proofs -> commit tokens: the deepest nesting the
    wire allows, every level as full as its list limit permits."""
    ring = RingId(1, 1)

    def at(body: object) -> Frame:
        return Frame(cluster, 3, ring, body, FAKE_SIG)  # type: ignore[arg-type]

    commit = at(CommitToken(0, (ENTRY,) * entries_per_commit, (), bytes(32), ()))
    proof = at(Proof(3, "equivocation", (commit,) * 2))
    join = at(Join(0, (3,), (), (proof,) * 2, ()))
    return encode(Frame(cluster, sender, ring, Proof(3, "equivocation", (join,) * 2), FAKE_SIG))


def with_header(datagram: bytes, cluster: bytes, sender: int) -> bytes:
    magic, version, kind, flags, _, _, rep, seq, length = HEADER.unpack_from(datagram)
    return (
        HEADER.pack(magic, version, kind, flags, cluster, sender, rep, seq, length)
        + datagram[HEADER.size :]
    )


def engine() -> Engine:
    return Engine(1, ROSTER, cluster_id=CLUSTER, security=KEYS.security(1))


@pytest.mark.parametrize(
    ("case", "cluster", "sender", "reason"),
    [
        ("foreign cluster", bytes(8), 2, "foreign_cluster"),
        ("outsider sender", CLUSTER, 999, "unknown_sender"),
        ("member, bad signature", CLUSTER, 2, "bad_signature"),
    ],
)
def test_a_crafted_nested_datagram_is_refused_before_its_body(
    case: str, cluster: bytes, sender: int, reason: str
) -> None:
    data = with_header(nested(200), cluster, sender)
    assert len(data) > 8000
    e = engine()
    with line_budget(REFUSE_LINES_MAX) as lines:
        e.receive(1.0, data)
    assert e.drops[reason] == 1, (case, dict(e.drops))
    assert lines[0] < REFUSE_LINES_MAX


def test_each_embedded_frame_is_decoded_once() -> None:
    """Linear nesting: 1 top frame, 2 joins, 4 proofs, 8 commit tokens = 14
    decodes; the canonical check used to decode each level again per level
    above it (2^depth)."""
    data = nested(40)
    calls = 0
    real = wire_frame.decode_nested

    def counting(raw: bytes, kinds: frozenset[int], depth: int) -> Frame:
        nonlocal calls
        calls += 1
        return real(raw, kinds, depth)

    with mock.patch.object(wire_frame, "decode_nested", counting):
        frame = decode(data)
    assert calls == 2 + 4 + 8
    assert encode(frame) == data


def test_decoding_work_grows_with_size_not_with_nesting() -> None:
    """Eight commit tokens three levels deep cost about eight times one
    commit token alone (each level re-packs its subtree once for the
    canonical check, without decoding it again), not 8 x 2^3 times."""
    entries = 200
    alone = encode(
        Frame(
            CLUSTER,
            3,
            RingId(1, 1),
            CommitToken(0, (ENTRY,) * entries, (), bytes(32), ()),
            FAKE_SIG,
        )
    )
    counts = []
    for data in (alone, nested(entries)):
        with line_budget(10**8) as lines:
            decode(data)
        counts.append(lines[0])
    assert counts[1] < 3 * 8 * counts[0]
