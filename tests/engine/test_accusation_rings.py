"""Which rings' accusations count at a member that is not (yet) in them.

Accusations are bound to a ring, so that an old one cannot be replayed to
evict a node again. Members do not install a ring at the same moment: the
first to finish recovery judge and accuse in the new ring while the rest are
still recovering it, and a member whose recovery then failed is left with
the older ring installed. Before, those members dropped every accusation of
the new ring (and the same ones carried later in joins as the evidence of
the verdict): the ring split on the verdict, and the evicted node's joins
kept restarting the members that had not convicted it, so nothing was
delivered for the rest of the run (Byzantine soak seed 4034, 10 nodes,
3:starve-commit 9:starve-successor 10:join-phantom).
"""

from __future__ import annotations

import pytest

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig, accusations
from ringward.engine.membership import GatherState, State
from ringward.engine.ringstore import RingMembers
from ringward.sim.keys import SimKeys
from ringward.wire import Accusation, Frame, RingId, encode

ROSTER = (1, 2, 3, 4, 5, 6, 7)  # f = 2: three accusers convict
KEYS = SimKeys(11, ROSTER)
OLD, NEW = RingId(1, 24), RingId(1, 28)
TARGET = 7


def _engine(state: State, installed: RingId | None, pending: RingId | None) -> Engine:
    e = Engine(1, ROSTER, config=EngineConfig(), security=KEYS.security(1))
    e.ring, e.members = installed, ROSTER if installed is not None else ()
    e.state = state
    e.pending = RingMembers(pending, ROSTER) if pending is not None else None
    if pending is not None:
        e.ring_entered = e.ring_seq_max = pending.seq
    return e


def _accusation(accuser: int, ring: RingId) -> Frame:
    return sign_frame(KEYS, accuser, ring, Accusation(TARGET, 3, "churn", 100))


def test_a_member_still_recovering_a_ring_counts_its_accusations() -> None:
    e = _engine(State.RECOVERY, OLD, NEW)
    for accuser in (2, 3, 4):
        e.receive(1.0, encode(_accusation(accuser, NEW)))
    assert TARGET in e.detector.verdicts


def test_a_verdict_of_a_newer_ring_carried_in_a_join_convicts() -> None:
    """Our recovery of NEW failed; the members that installed it convicted
    in it, and their joins carry the accusations."""
    e = _engine(State.GATHER, OLD, None)
    e.ring_entered = e.ring_seq_max = NEW.seq
    accusations.absorb(e, (), tuple(_accusation(a, NEW) for a in (2, 3, 4)))
    assert TARGET in e.detector.verdicts


def test_accusations_of_a_ring_older_than_ours_do_not_count() -> None:
    e = _engine(State.OPERATIONAL, NEW, None)
    accusations.absorb(e, (), tuple(_accusation(a, OLD) for a in (2, 3, 4)))
    assert TARGET not in e.detector.verdicts


def test_accusations_of_a_ring_the_target_was_forgiven_after_do_not_count() -> None:
    e = _engine(State.GATHER, OLD, None)
    e.detector.amnesty[TARGET] = NEW.seq
    accusations.absorb(e, (), tuple(_accusation(a, NEW) for a in (2, 3, 4)))
    assert TARGET not in e.detector.verdicts


def test_accusers_of_two_rings_are_not_added_together() -> None:
    e = _engine(State.RECOVERY, OLD, NEW)
    accusations.absorb(e, (), (_accusation(2, OLD), _accusation(3, NEW), _accusation(4, NEW)))
    assert TARGET not in e.detector.verdicts


def test_a_delayed_older_accusation_does_not_replace_a_newer_one() -> None:
    """One frame per accuser is kept: the later ring's, so that a delayed
    copy of an older accusation cannot replace it."""
    e = _engine(State.RECOVERY, OLD, NEW)
    accusations.absorb(e, (), (_accusation(2, NEW), _accusation(2, OLD)))
    assert [f.ring for f in e.detector.accusers(TARGET, NEW)] == [NEW]


def test_accusers_of_rings_newer_than_ours_are_added_together() -> None:
    """Members that never shared a ring since ours accuse in different
    rounds' rings: counted apart, none reached f+1 and no ring was ever
    installed (Byzantine soak seed 210737)."""
    e = _engine(State.GATHER, OLD, None)
    e.ring_entered = e.ring_seq_max = 32
    accusations.absorb(
        e, (), (_accusation(2, NEW), _accusation(3, RingId(1, 32)), _accusation(4, RingId(5, 32)))
    )
    assert TARGET in e.detector.verdicts


def test_a_member_with_no_ring_bound_accuses_in_the_round_it_gathers_for() -> None:
    """A member that refused every commit round (its certificate was
    altered on the way) had no ring to bind an accusation to, so its
    suspicion never counted anywhere (Byzantine soak seed 210737)."""
    e = _engine(State.GATHER, None, None)
    e.gather = GatherState(proc=set(ROSTER), fail=set())
    e.ring_entered, e.ring_seq_max = 4, 32
    for _ in range(5):
        accusations.suspect(e, TARGET, "commit_loss")
    assert e.detector.accused.get(TARGET) == RingId(1, 32)


@pytest.mark.parametrize(
    ("installed", "known", "seqs"),
    [(None, 40, (44, 60, 96)), (OLD, 60, (28, 44, 60))],
    ids=["just-restarted", "behind"],
)
def test_accusations_of_rounds_far_apart_are_not_added_together(
    installed: RingId | None, known: int, seqs: tuple[int, ...]
) -> None:
    """Sub-threshold accusations of incidents far apart (replayed, say, to
    a node that just restarted with the ring seq it had saved) do not add
    up to a verdict: only those within four rounds of the highest ring seq
    we know are summed across rings."""
    e = _engine(State.GATHER, installed, None)
    e.ring_entered = e.ring_seq_max = known
    made = tuple(_accusation(a, RingId(a, s)) for a, s in zip((2, 3, 4), seqs, strict=True))
    accusations.absorb(e, (), made)
    assert TARGET not in e.detector.verdicts
