"""A stalled commit round is scored once per member: a member that entered
the round blames it through its own timeout, and the blame a member waiting
in GATHER lays when the next round shows up needs a fresh join of the holder
since the stall (a replayed token proves nothing about it)."""

from __future__ import annotations

from ringward.engine import Engine, EngineConfig, accusations, faults, recovery
from ringward.engine.detector import CommitWatch
from ringward.engine.membership import GatherState, State
from ringward.engine.ringstore import RingMembers
from ringward.wire import RingId

ROSTER = tuple(range(1, 8))
HOLDER, ME = 2, 5
OLD, NEW = RingId(1, 8), RingId(1, 12)


def _watch(ring: RingId, at: float) -> CommitWatch:
    return CommitWatch(ring, ROSTER, 1, b"", (), at)


def test_a_member_that_entered_the_round_scores_its_stall_once() -> None:
    e = Engine(ME, ROSTER, config=EngineConfig())
    e.now, e.state = 1.0, State.COMMIT
    e.pending = RingMembers(OLD, ROSTER)
    e.ring_entered = OLD.seq
    e.detector.commit_watch = _watch(OLD, 1.0)
    e.now = 2.0
    faults.on_token_loss(e)
    e.enter_gather(2.0, reason="token_loss")
    blame = e.detector.take_blame(HOLDER)
    assert blame is not None
    accusations.suspect(e, HOLDER, blame.signal)
    assert e.gather is not None
    e.gather.answered[HOLDER] = 2.05
    once = e.detector.total(2.05, HOLDER)
    e.now = 2.3
    recovery._watch(e, _watch(NEW, 2.3))
    assert e.detector.total(2.3, HOLDER) <= once


def _waiting(answered_at: float | None) -> Engine:
    e = Engine(ME, ROSTER, config=EngineConfig())
    e.state = State.GATHER
    e.gather = GatherState(proc=set(ROSTER), fail=set())
    if answered_at is not None:
        e.gather.answered[HOLDER] = answered_at
    e.detector.commit_watch = _watch(OLD, 1.0)
    e.now = 2.3
    recovery._watch(e, _watch(NEW, 2.3))
    return e


def test_a_member_waiting_scores_a_holder_that_answered_since_the_stall() -> None:
    assert _waiting(answered_at=2.1).detector.total(2.3, HOLDER) > 0


def test_a_member_waiting_defers_the_blame_of_a_holder_not_heard_since() -> None:
    e = _waiting(answered_at=0.9)
    assert e.detector.total(2.3, HOLDER) == 0
    assert e.detector.loss_blame is not None and e.detector.loss_blame.node == HOLDER
