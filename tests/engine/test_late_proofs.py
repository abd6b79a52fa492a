"""A member convicted at the moment it proves another's misbehaviour: its
proof is still taken. Byzantine soak seed 60667 (7 nodes, far-hop-jump and
lie-aru, 5% loss): lie-aru signed a token out of turn that only its
successor, far-hop-jump, saw; far-hop-jump's proof of it reached the others
just after they had evicted far-hop-jump, was dropped as a banned sender's,
and lie-aru was never evicted. A proof convicts only the signer of its
statements, so who forwards it does not matter; a banned sender's proofs are
taken for a token timeout after its verdict, four at most."""

from __future__ import annotations

from ringward.engine import Engine, EngineConfig
from ringward.engine.detector import PROOFS_AFTER_BAN_MAX
from ringward.wire import Kind, RingId, limits
from ringward.wire.frame import Header

CLUSTER = bytes(limits.CLUSTER_ID_BYTES)


def _head(kind: Kind, sender: int) -> Header:
    return Header(kind, CLUSTER, sender, RingId(1, 4), 100)


def test_a_banned_sender_s_proofs_are_taken_briefly_and_few() -> None:
    e = Engine(1, (1, 2, 3, 4), config=EngineConfig())
    det, t0 = e.detector, 5.0
    assert det.convict(t0, 2, "rule:seq", True, ()) is not None
    assert not det.takes_late_proof(t0, _head(Kind.TOKEN, 2))
    assert not det.takes_late_proof(t0, _head(Kind.PROOF, 3))  # not banned
    taken = [det.takes_late_proof(t0 + 0.1, _head(Kind.PROOF, 2)) for _ in range(10)]
    assert taken == [True] * PROOFS_AFTER_BAN_MAX + [False] * (10 - PROOFS_AFTER_BAN_MAX)
    assert not det.takes_late_proof(t0 + 1.5, _head(Kind.PROOF, 2))  # a token timeout later
    assert len(det.late_proofs) == 1
