"""A member convicted at the moment it proves another's misbehaviour: its
proof is still taken. Byzantine soak seed 60667 (7 nodes, far-hop-jump and
lie-aru, 5% loss): lie-aru signed a token out of turn that only its
successor, far-hop-jump, saw; far-hop-jump's proof of it reached the others
just after they had evicted far-hop-jump, was dropped as a banned sender's,
and lie-aru was never evicted. A proof convicts only the signer of its
statements, so who forwards it does not matter; a banned sender's proofs are
taken for a token timeout after its verdict, four verified ones at most."""

from __future__ import annotations

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig
from ringward.engine.detector import PROOFS_AFTER_BAN_MAX
from ringward.engine.reasons import Drop
from ringward.sim.keys import SimKeys
from ringward.wire import LoadReport, Proof, RingId, Token, TokenRequest, limits

ROSTER = (1, 2, 3, 4)
KEYS = SimKeys(7, ROSTER)
RING = RingId(1, 4)
T0 = 5.0


def _banned_prover() -> tuple[Engine, Engine]:
    """Node 1, which has just convicted node 2, and node 2 (the prover)."""
    me = Engine(1, ROSTER, config=EngineConfig(), security=KEYS.security(1))
    prover = Engine(2, ROSTER, config=EngineConfig(), security=KEYS.security(2))
    me.now = T0
    assert me.detector.convict(T0, 2, "rule:seq", True, ()) is not None
    return me, prover


def _proof(prover: Engine) -> bytes:
    # Node 3's token (it proves nothing: only the way to the proof's
    # handler is at stake here; a refused datagram never gets there).
    tk = Token(7, 4, 0, 0, 0, (), 0, 0, (), bytes(32), LoadReport(0, 0, 0, 0))
    statement = sign_frame(KEYS, 3, RING, tk, bytes(limits.CLUSTER_ID_BYTES))
    return prover.sign_frame(RING, Proof(3, "rule:turn", (statement,)))[1]


def test_a_banned_sender_s_proofs_are_taken_briefly_and_few() -> None:
    me, prover = _banned_prover()
    raw = _proof(prover)
    for _ in range(PROOFS_AFTER_BAN_MAX + 3):
        me.receive(T0 + 0.1, raw)
    assert me.drops[Drop.BANNED_SENDER] == 3
    me.receive(T0 + 1.5, raw)  # a token timeout after the verdict
    assert me.drops[Drop.BANNED_SENDER] == 4
    assert len(me.detector.late_proofs) == 1


def test_forged_copies_use_up_no_late_proof() -> None:
    """A datagram naming the banned sender with a bad signature (anyone on
    the network can send one) is refused on its signature and counts for
    nothing: the real proofs that follow are still taken."""
    me, prover = _banned_prover()
    raw = _proof(prover)
    forged = raw[:-1] + bytes([raw[-1] ^ 1])
    for _ in range(10):
        me.receive(T0 + 0.1, forged)
    assert me.drops[Drop.BAD_SIGNATURE] == 10
    for _ in range(PROOFS_AFTER_BAN_MAX):
        me.receive(T0 + 0.2, raw)
    assert me.drops[Drop.BANNED_SENDER] == 0


def test_only_proofs_of_a_banned_sender_are_taken() -> None:
    me, prover = _banned_prover()
    me.receive(T0 + 0.1, prover.sign_frame(RING, TokenRequest(5))[1])
    assert me.drops[Drop.BANNED_SENDER] == 1
