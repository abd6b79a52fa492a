"""Delayed and replayed joins change nothing (Byzantine soak seed 1016).

A replayer re-sent correct members' joins of earlier rounds while a new
round was gathering. Taken as new, they brought an evicted node back into
everyone's proc set (the round then waited a consensus timeout for its join)
and replaced the senders' latest joins, so those senders looked silent and
were failed: a 10-node ring fell apart into singletons. Driven here on a
real engine with joins signed by the simulator's keys, through ``receive``.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig
from ringward.engine.membership import State
from ringward.sim.keys import SimKeys
from ringward.wire import Join, RingId, encode

ROSTER = (1, 2, 3, 4, 5)
KEYS = SimKeys(7, ROSTER)
RING = RingId(1, 8)
MEMBERS = (1, 2, 3, 4)


def engine() -> Engine:
    e = Engine(1, ROSTER, config=EngineConfig(), security=KEYS.security(1))
    e.state, e.ring, e.members, e.ring_seq_max = State.OPERATIONAL, RING, MEMBERS, RING.seq
    e.now = 10.0
    return e


def join(sender: int, ring_seq: int, proc: tuple[int, ...], fail: tuple[int, ...] = ()) -> bytes:
    body = Join(ring_seq, proc, fail, (), ())
    # A join carries at least its header ring's seq (a correct node's older
    # joins name its older ring).
    ring = RING if ring_seq >= RING.seq else RingId(RING.rep, ring_seq)
    return encode(sign_frame(KEYS, sender, ring, body))


def gathering() -> Engine:
    e = engine()
    e.enter_gather(e.now, reason="token_loss")
    assert e.gather is not None and e.gather.proc == set(MEMBERS)
    return e


def test_a_join_of_an_earlier_ring_from_a_member_changes_nothing() -> None:
    e = gathering()
    g = e.gather
    assert g is not None
    # Node 3 is a member of ring seq 8: a join of it carrying seq 4 was sent
    # before it installed that ring. It proposed node 5, then in the roster.
    e.receive(11.0, join(3, 4, (1, 2, 3, 4, 5)))
    assert e.drops["stale_join"] == 1
    assert g.proc == set(MEMBERS) and 3 not in g.joins
    # Its current join is taken.
    e.receive(11.1, join(3, 8, MEMBERS))
    assert 3 in g.joins and e.drops["stale_join"] == 1


def test_an_older_join_of_the_same_round_does_not_replace_the_latest() -> None:
    e = gathering()
    g = e.gather
    assert g is not None
    e.receive(11.0, join(3, 8, MEMBERS, (4,)))
    latest = g.joins[3]
    assert g.fail == {4}
    # Its first join of the round, before it failed node 4: replayed.
    e.receive(11.2, join(3, 8, MEMBERS))
    assert e.drops["stale_join"] == 1
    assert g.joins[3] == latest
    # A join that grew (or differs without being smaller) is newer.
    e.receive(11.3, join(3, 8, (*MEMBERS, 5), (4,)))
    assert g.joins[3][0] == frozenset({1, 2, 3, 4, 5})
    assert e.drops["stale_join"] == 1


def test_a_stale_join_does_not_restart_an_operational_ring() -> None:
    e = engine()
    e.receive(11.0, join(2, 4, MEMBERS))
    assert e.state is State.OPERATIONAL and e.drops["stale_join"] == 1


def test_an_evicted_node_proposed_by_a_member_is_failed_at_once() -> None:
    e = gathering()
    g = e.gather
    assert g is not None
    e.detector.convict(e.now, 5, "accused", False, ())
    # Node 2 has not learnt of the verdict yet and proposes node 5.
    e.receive(11.0, join(2, 8, (*MEMBERS, 5)))
    assert 5 in g.proc and 5 in g.fail
    assert 5 not in g.candidates()
    # Our own latest join says so, for the others to union.
    assert 5 in g.joins[1][1]


def test_a_replayed_join_of_an_outsider_older_than_its_signed_frames_changes_nothing() -> None:
    """Node 5 is outside our ring; a join of it carrying seq 4 is replayed
    after it signed seq 12. The stale-join rule used to know only our ring's
    members and the sender's latest join of the round, so the replay, the
    first join of node 5 in the round, was taken: its stale fail set (node
    2) was unioned into ours."""
    e = engine()
    # Node 5's join of a ring of its own (not for us: nothing starts).
    e.receive(10.5, join(5, 12, (5,)))
    assert e.state is State.OPERATIONAL
    e.enter_gather(10.6, reason="token_loss")
    g = e.gather
    assert g is not None
    e.receive(11.0, join(5, 4, (*MEMBERS, 5), (2,)))
    assert e.drops["stale_join"] == 1
    assert 2 not in g.fail and 5 not in g.joins and 5 not in g.proc
    # Its current join is taken.
    e.receive(11.1, join(5, 12, (*MEMBERS, 5)))
    assert 5 in g.joins and 5 in g.proc and e.drops["stale_join"] == 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=2, max_value=4),
            st.sampled_from((4, 8, 12)),
            st.sets(st.sampled_from(ROSTER)),
            st.sets(st.sampled_from(ROSTER[1:])),  # none fails us (it would be failed)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_replaying_every_join_already_seen_changes_nothing(
    joins: list[tuple[int, int, set[int], set[int]]],
) -> None:
    """Whatever joins correct members sent (each one's seq never falls and
    its sets only grow), a second delivery of any of them (a replay) leaves
    the round exactly as it was: sets, latest joins and state."""
    e = gathering()
    raws = []
    sent: dict[int, tuple[int, set[int], set[int]]] = {}
    for t, (sender, drawn, more_proc, more_fail) in enumerate(joins):
        seq0, proc, fail = sent.get(sender, (0, {sender}, set()))
        seq, proc, fail = max(drawn, seq0), proc | more_proc, (fail | more_fail) - {sender}
        sent[sender] = (seq, proc, fail)
        raw = join(sender, seq, tuple(sorted(proc)), tuple(sorted(fail)))
        raws.append(raw)
        e.receive(11.0 + t * 0.01, raw)
    if e.state is not State.GATHER or e.gather is None:
        return  # consensus reached or a commit started: another round
    g = e.gather
    before = (set(g.proc), set(g.fail), dict(g.joins), e.state)
    for raw in raws:
        e.receive(12.0, raw)
        assert (set(g.proc), set(g.fail), dict(g.joins), e.state) == before


def test_proposing_an_evicted_node_is_allowed_at_the_merge_back_off_only() -> None:
    """A member that missed an eviction (it was down) hears the evicted
    node and proposes it at its merge back-off (0.2 s doubling); a node
    that proposes it every 0.3 s (join-phantom after an eviction) is not
    excused every time."""
    det = engine().detector
    first = EngineConfig().merge_timeout_ms / 1000
    t, gap, correct = 0.0, first, []
    for _ in range(8):
        correct.append(det.may_propose(t, 2, frozenset({5}), first))
        t, gap = t + gap, min(2 * gap, 10.0)
    assert all(correct)
    excused = [det.may_propose(0.3 * i, 3, frozenset({5}), first) for i in range(20)]
    assert excused[:3] == [True, True, True]
    assert excused.count(False) >= 12
    # Forgiven: the schedule starts afresh.
    det.convict(0.0, 5, "accused", False, ())
    det.forgive(10.0, 5, 8)
    assert (3, 5) not in det.merge_proposals


def _restart_proposing(e: Engine, sender: int, outsider: int, at: float) -> None:
    """``sender``'s join restarts ``e``'s operational ring at ``at`` (the
    token seen just before), proposing ``outsider``, which ``e`` hears."""
    from ringward.engine import accusations
    from ringward.wire import decode

    e.state, e.now = State.OPERATIONAL, at
    e.detector.tokens.last_seen_t = at
    e.detector.heard_from(outsider, at)
    frame = decode(join(sender, RING.seq, (*MEMBERS, outsider)))
    accusations.on_restart_by_join(e, frame)


def test_proposing_a_live_outsider_faster_than_the_merge_back_off_is_churn() -> None:
    """An outsider that is alive but never merged (its joins refused: a
    Byzantine accomplice) was an excuse for any number of restarts: the
    proposal was no phantom (the node is heard) and no churn (a merge).
    Merging it at a correct member's back-off is still excused; restarting
    every 0.3 s (join-churn's pace) is churn (Byzantine soak seed 60683)."""
    first = EngineConfig().merge_timeout_ms / 1000
    e, t, gap = engine(), 10.0, first
    for _ in range(8):
        _restart_proposing(e, 2, 5, t)
        t, gap = t + gap, min(2 * gap, 10.0)
    assert "churn" not in e.detector.scores(t).get(2, {})
    for i in range(10):
        _restart_proposing(e, 3, 5, 10.0 + 0.3 * i)
    assert e.detector.scores(13.0).get(3, {}).get("churn", 0.0) > 0
    e.detector.merged((5,))  # in an installed ring: its merges start afresh
    assert not [k for k in e.detector.merge_proposals if k[1] == 5]
