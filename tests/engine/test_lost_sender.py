"""A sender whose DATA frames are all lost on the way (its tokens get
through: a path MTU black hole drops the large datagrams only) gets no
correct member evicted (issue 16: no signal blames a member for a loss it
did not cause; real engines, real keys).

Two signals used to: ``aru_stuck`` blamed the member that last set the
ring's aru, though every observer lacked the same frame; and in the
recovery that followed the sender's departure every member re-broadcast
the sender's tokens, which list frames none of them holds, and went past
its ``recovery_flood`` allowance.
"""

from __future__ import annotations

import dataclasses

import pytest

from ring_harness import FAST, Cluster
from ringward.engine.membership import State
from ringward.wire.frame import peek
from ringward.wire.messages import Kind

pytestmark = pytest.mark.heavy  # seconds each: real engines under a traced work budget

SENDER = 4
FORMED_S = 0.6
# One message per visit of the sender, each a frame of its own, so that
# the sender signs one token per frame (max_messages: room for the
# retransmissions it serves in vain as well).
MESSAGES = 60
PAYLOAD = b"x" * 1300
BETWEEN_S = 0.02
CONFIG = dataclasses.replace(FAST, window_size=120, max_messages=60)


class BlackHole:
    on = False

    def __call__(self, c: Cluster, src: int, dest: int, data: bytes) -> bool:
        return self.on and src == SENDER and peek(data).kind is Kind.DATA


def test_a_sender_whose_frames_are_all_lost_gets_no_correct_member_evicted() -> None:
    hole = BlackHole()
    c = Cluster(4, config=CONFIG, lose=hole)
    c.run(FORMED_S)
    assert all(e.state is State.OPERATIONAL for e in c.engines.values())
    hole.on = True
    for _ in range(MESSAGES):
        c.submit(SENDER, PAYLOAD)
        c.run(BETWEEN_S)
    others = (1, 2, 3)
    for i in others:
        store = c.engines[i].store
        assert store is not None
        # The scenario: tokens that list frames nobody else holds.
        assert store.aru == store.high_seq == 0
        assert len(store.tokens) >= MESSAGES // 2
    c.down.add(SENDER)
    c.run(3.0)
    for i in others:
        e = c.engines[i]
        accused = {k: v for k, v in e.notes.items() if str(k).startswith("accuse:")}
        assert accused == {}, (i, accused)
        assert c.evictions(i) == [] and c.rejected(i) == []
        assert e.state is State.OPERATIONAL and c.regular_members(i) == others
