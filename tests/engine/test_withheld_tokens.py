"""A member that sends its tokens to every member but one cannot get that
one evicted (real engines, real keys).

Only the member left out sees anything wrong, so nothing it could say would
convict the withholder (f liars must not frame anyone); what must hold is
that the member left out keeps up and is never blamed for it."""

from __future__ import annotations

import pytest

from ring_harness import Cluster
from ringward.engine.membership import State
from ringward.engine.reasons import Note
from ringward.wire import Kind
from ringward.wire.frame import peek

pytestmark = pytest.mark.heavy  # seconds: real engines under a traced work budget

WITHHOLDER = 2
LEFT_OUT = 1
FORMED_S = 0.5


def _withheld(c: Cluster, src: int, dest: int, data: bytes) -> bool:
    """Node 2's tokens (its own and any it re-sends) never reach node 1."""
    return (
        c.now >= FORMED_S
        and (src, dest) == (WITHHOLDER, LEFT_OUT)
        and peek(data).kind is Kind.TOKEN
    )


def test_a_member_left_out_of_one_makers_tokens_keeps_up() -> None:
    """Node 1 asked node 2 alone, five times, for each of its tokens (and
    the chain asked everyone for one link per retransmission period), while
    the ring made a token of node 2's per rotation: node 1's chain fell
    further behind until it stalled, restarted the ring every two token
    timeouts, was blamed for it (``churn``) by every other member and was
    evicted within 8 s. Now a missing token is asked of everyone after its
    maker's first chance."""
    c = Cluster(5, lose=_withheld)
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    for k in range(24):
        c.submit(3, b"m%d" % k)
        c.run(0.25)
    c.run(1.0)
    for i in c.roster:
        assert not c.evictions(i) and not c.rejected(i), i
        assert c.engines[i].state is State.OPERATIONAL, i
        assert c.regular_members(i) == c.roster, i
        assert c.delivered(i) == [b"m%d" % k for k in range(24)], i
    assert c.engines[LEFT_OUT].notes[Note.CHAIN_STALLED] == 0
