"""Blame for a commit round that dies lands on the member that stopped it,
never on one whose datagram the network lost (real engines, real keys)."""

from __future__ import annotations

import pytest

from ring_harness import Cluster
from ringward.engine import EngineConfig
from ringward.engine.membership import State
from ringward.wire import CommitToken, decode

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
