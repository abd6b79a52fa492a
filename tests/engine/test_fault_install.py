"""Eviction announcements at install (engine/faults.py ``on_install``)."""

from __future__ import annotations

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig, accusations, faults
from ringward.engine.api import Evicted
from ringward.engine.detector import Verdict
from ringward.engine.ringstore import RingMembers
from ringward.sim.keys import SimKeys

KEYS = SimKeys(5, (1, 2, 3, 4))


def test_a_verdict_forgiven_and_renewed_before_an_install_is_announced_once() -> None:
    """Byzantine soak seed 1010 raised TypeError here: a verdict forgiven
    before any view without its target (kept to be announced) and a new
    verdict for the same target were sorted together as (target, Verdict)
    pairs, and two Verdicts do not compare."""
    e = Engine(1, (1, 2, 3, 4), config=EngineConfig(), security=KEYS.security(1))
    det = e.detector
    det.unannounced[3] = Verdict(3, "accused", False, (), 1.0)
    det.verdicts[3] = Verdict(3, "accused", False, (), 5.0)
    accusations.on_install(e, (1, 2, 4), "R1.8")
    evicted = [ev for ev in e.ready().events if isinstance(ev, Evicted)]
    assert [ev.target for ev in evicted] == [3]
    assert det.unannounced == {}


def test_accusations_before_the_first_ring_is_installed_bind_to_the_ring_being_formed() -> None:
    """Byzantine soak seed 1115: a member that broke every first recovery
    was suspected by every member in every round, but accusations were
    bound to the installed ring and there was none: nobody could accuse
    it, and the ring never formed. They now bind to the ring being formed."""
    from ringward.engine.membership import State
    from ringward.wire import Accusation, RingId, encode

    roster = (1, 2, 3, 4)
    pending = RingId(1, 8)
    e = Engine(1, roster, config=EngineConfig(), security=KEYS.security(1))
    e.state, e.pending = State.RECOVERY, RingMembers(pending, roster)
    assert e.ring is None
    faults.link_broken(e, 4)  # weight 100: one suspicion is an accusation
    assert e.notes["accuse:broken_link"] == 1
    assert e.detector.accusers(4, pending)  # our own, bound to the new ring
    # One more accuser of that ring makes f+1 = 2 on 4 nodes: convicted.
    e.receive(1.0, encode(sign_frame(KEYS, 2, pending, Accusation(4, 1, "broken_link", 100))))
    assert 4 in e.detector.verdicts
    assert e.state is State.GATHER and e.banned(4)  # the round that forms without it


def test_a_member_convicted_after_it_left_the_view_is_announced_at_once() -> None:
    """CI (tests/cli, `--misbehave overload`): an overloaded node's commit
    rounds died at it, so the others formed a view without it; its late
    joins then convicted it of overload. Evictions were announced only by
    an install that leaves the target out, and the next install came after
    its 3 s cool-down, with it back in: no `evict` event, ever. A verdict
    no view we form will carry out is announced when it is reached."""
    from ringward.engine.membership import State
    from ringward.engine.ringstore import RingStore
    from ringward.wire import Join, LoadReport, Proof, RingId, encode

    ring, cfg = RingId(1, 8), EngineConfig()
    e = Engine(1, (1, 2, 3, 4), config=cfg, security=KEYS.security(1))
    e.state, e.ring, e.members, e.ring_seq_max = State.OPERATIONAL, ring, (1, 2, 3), ring.seq
    e.store = RingStore(ring, cfg.receive_window_frames_max)
    old, joins = RingId(1, 4), []
    for n, seq in enumerate((4, 8, 12), 1):  # node 4's joins of three rounds
        load = LoadReport(0, 0, cfg.overload_hold_ms, 0, n)
        body = Join(seq, (1, 2, 3, 4), (), (), (), 0, load)
        joins.append(sign_frame(KEYS, 4, old, body))
    proof = Proof(4, "overload", tuple(joins))
    e.receive(10.0, encode(sign_frame(KEYS, 2, ring, proof)))
    verdict = e.detector.verdicts.get(4)
    assert verdict is not None and verdict.reason == "overload"
    assert e.state is State.OPERATIONAL  # nothing to leave: 4 is not in our view
    evicted = [ev for ev in e.ready().events if isinstance(ev, Evicted)]
    assert [(ev.target, ev.reason) for ev in evicted] == [(4, "overload")]
    accusations.on_install(e, (1, 2, 3, 4), "R1.12")  # back after its cool-down
    assert not [ev for ev in e.ready().events if isinstance(ev, Evicted)]
