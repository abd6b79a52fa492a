"""Which fail claims a member takes (engine/claims.py).

Totem unions every join's fail set on trust: one Byzantine member listing a
live correct node kept it out of every ring, and the members that merged it
back were blamed for churn and phantoms until one was evicted (simulator
``fail-live``: 7 nodes, seed 1, a correct member evicted; issue 16, finding
10). A claim about a node heard lately now needs f+1 claimants; the
claimant nobody follows is failed by the consensus timer and suspected.
"""

from __future__ import annotations

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig, claims, gather
from ringward.engine.membership import GatherState, State
from ringward.sim.keys import SimKeys
from ringward.wire import Join, RingId

ROSTER = (1, 2, 3, 4, 5, 6, 7)  # f = 2
KEYS = SimKeys(13, ROSTER)
RING = RingId(1, 8)
NOW = 10.0


def _engine(
    roster: tuple[int, ...] = ROSTER,
    fail_claims: dict[int, set[int]] | None = None,
    detector: bool = True,
) -> Engine:
    e = Engine(1, roster, config=EngineConfig(fault_detector=detector), security=KEYS.security(1))
    e.now = NOW
    e.state = State.GATHER
    g = GatherState(proc=set(roster), fail=set(), ring_seq_max=8)
    for node in roster:
        fail = (fail_claims or {}).get(node, set())
        join = Join(8, roster, tuple(sorted(fail)), (), ())
        g.joins[node] = (frozenset(roster), frozenset(fail), sign_frame(KEYS, node, RING, join))
        for x in fail:
            g.claimed_at[(node, x)] = NOW - 1.0  # since the round's start
        e.detector.heard_at[node] = NOW  # every node spoke a moment ago
    e.gather = g
    return e


def test_one_claim_about_a_node_heard_lately_is_not_taken() -> None:
    e = _engine(fail_claims={7: {2}})
    assert e.gather is not None
    assert claims.adopted(e, e.gather) == set()


def test_f_plus_one_claims_are_taken() -> None:
    e = _engine(fail_claims={5: {2}, 6: {2}, 7: {2}})
    assert e.gather is not None
    assert claims.adopted(e, e.gather) == {2}


def test_a_claim_about_a_node_not_heard_for_a_consensus_timeout_is_taken() -> None:
    e = _engine(fail_claims={7: {2}})
    e.detector.heard_at[2] = NOW - 2 * e.timing.consensus_timeout_s
    assert e.gather is not None
    assert claims.adopted(e, e.gather) == {2}


def test_with_f_zero_or_no_detector_a_claim_is_taken_as_in_totem() -> None:
    small = _engine(roster=(1, 2, 3), fail_claims={3: {2}})
    crash = _engine(fail_claims={7: {2}}, detector=False)
    for e in (small, crash):
        assert e.gather is not None
        assert claims.adopted(e, e.gather) == {2}


def test_a_lone_claim_that_we_failed_does_not_part_us_from_its_claimant() -> None:
    e = _engine(fail_claims={7: {1}})
    assert e.gather is not None
    assert not claims.parts_ways(e, e.gather, 7)
    e3 = _engine(fail_claims={5: {1}, 6: {1}, 7: {1}})
    assert e3.gather is not None and claims.parts_ways(e3, e3.gather, 7)


def test_the_consensus_timer_fails_the_claimer_and_spares_who_failed_it_first() -> None:
    """7 has claimed 2 failed since the round started; 6's consensus timer
    fired a moment ago and failed 7. Ours fails 7 (suspected of
    ``fail_claim``) and keeps 6, whose join then matches ours."""
    e = _engine(fail_claims={7: {2}, 6: {7}})
    g = e.gather
    assert g is not None
    g.claimed_at[(6, 7)] = NOW - 0.001
    gather.on_consensus_timer(e)
    assert g.fail == {7}
    assert e.notes["accuse:fail_claim"] == 0 and e.detector.total(NOW, 7) == 50
    assert e.detector.total(NOW, 6) == 0


def test_a_claim_about_a_node_we_suspect_ourselves_is_taken() -> None:
    """Byzantine soak seed 2098: two members failed the representative that
    withheld the commit (``commit_withheld``), the others were in another
    round; refusing the claim failed the two correct claimants instead."""
    e = _engine(fail_claims={2: {3}, 7: {3}})
    assert e.gather is not None
    assert claims.adopted(e, e.gather) == set()
    e.detector.score(NOW, 3, "commit_withheld")
    assert claims.adopted(e, e.gather) == {3}
