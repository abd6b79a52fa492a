"""Blame for a commit round that dies lands on the member that stopped it,
never on one whose datagram the network lost (real engines, real keys)."""

from __future__ import annotations

import pytest

from ring_harness import Cluster
from ringward.engine import EngineConfig
from ringward.engine.detector import CommitWatch
from ringward.engine.membership import State
from ringward.wire import CommitToken, RingId, decode

pytestmark = pytest.mark.heavy  # seconds: real engines under a traced work budget

REP = 1  # the lowest id represents every round
SABOTEUR = 2  # the representative's first forward goes to it
CORRECT = (1, 3, 4)


def _drop_commits(c: Cluster, node: int, data: bytes) -> list[bytes]:
    late = c.now >= 0.6  # after the first ring formed
    return [] if late and isinstance(decode(data).body, CommitToken) else [data]


def test_a_lost_first_forward_does_not_frame_the_representative() -> None:
    """The representative's first commit forward reached only the next
    member, which dropped it; the others never saw the round start and
    blamed the representative (``commit_withheld``) for the saboteur's
    silence, while the retransmissions went to the saboteur alone. Now they
    go to everyone until the round moves, so the others see it started."""
    lost: dict[int, bytes] = {}

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        if c.now < 0.6 or src != REP or dest == SABOTEUR:
            return False
        if not isinstance(decode(data).body, CommitToken):
            return False
        if dest in lost or (lost and data not in lost.values()):
            return False
        lost[dest] = data  # the first copy of the first forward only
        return True

    # The default timings: the representative gives up on the round a
    # token timeout after its forward, later than the others' consensus
    # timeout since agreement (SILENT_TOKEN_FRACTION of it, on a join).
    c = Cluster(4, config=EngineConfig(), tamper={SABOTEUR: _drop_commits}, lose=lose)
    c.run(0.6)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    c.call(3, lambda: c.engines[3].enter_gather(c.now, reason="rekey"))
    c.run(8.0)
    assert lost, "the scenario never lost the first forward"
    for i in CORRECT:
        assert not any(ev.target == REP for ev in c.evictions(i)), (i, c.evictions(i))
        signals = c.engines[i].detector.scores(c.now).get(REP, {})
        assert "commit_withheld" not in signals, (i, signals)
        assert c.engines[i].state is State.OPERATIONAL, i
        assert c.regular_members(i) == CORRECT, (i, c.regular_members(i))
        assert any(ev.target == SABOTEUR for ev in c.evictions(i)), (i, c.evictions(i))


def test_a_representative_withholding_after_an_abandoned_round_is_failed() -> None:
    """Byzantine soak seed 6085: members left a commit round (of another
    membership) when a merge join arrived, agreed on a new one whose
    representative withheld its commit, and waited for good: the abandoned
    round's progress, seen less than a consensus timeout before the new
    agreement, was taken for the new round's start. Only a commit of the
    agreed membership shows that its round started."""
    c = Cluster(5, config=EngineConfig(), tamper={REP: _drop_commits})
    c.run(0.6)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    ring = c.engines[3].ring
    assert ring is not None
    others = tuple(i for i in c.roster if i != REP)
    abandoned = CommitWatch(
        RingId(rep=others[0], seq=ring.seq + 4), others, 1, bytes(32), (), c.now
    )
    for i in others:
        c.engines[i].detector.commit_watch = abandoned
    c.call(3, lambda: c.engines[3].enter_gather(c.now, reason="rekey"))
    c.run(6.0)
    for i in others:
        assert c.engines[i].state is State.OPERATIONAL, (i, c.engines[i].state)
        assert c.regular_members(i) == others, (i, c.regular_members(i))
        signals = c.engines[i].detector.scores(c.now).get(REP, {})
        assert "commit_withheld" in signals, (i, signals)
