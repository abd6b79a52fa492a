"""Proofs and the detector's bookkeeping, piece by piece (engine/evidence.py,
engine/detector.py). The end-to-end behaviour is in test_byzantine.py."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sign_frame, signature_ok
from ringward.engine import EngineConfig
from ringward.engine.detector import Detector
from ringward.engine.evidence import backlog_step_max, check_proof, digest, transition_rule
from ringward.sim.keys import SimKeys
from ringward.wire import (
    Accusation,
    Body,
    Frame,
    FrameRef,
    Join,
    LoadReport,
    Proof,
    RingId,
    Token,
    encode,
)

CFG = EngineConfig()
KEYS = SimKeys(5, tuple(range(1, 8)))
RING = RingId(1, 8)
MEMBERS = (1, 2, 3, 4)
CLUSTER = bytes(8)
IDLE = LoadReport(0, 0, 0, 0)


def token(hop: int, seq: int, aru: int, aru_id: int, **kw: object) -> Token:
    base = Token(hop, MEMBERS[hop % 4], seq, aru, aru_id, (), 0, 0, (), bytes(32), IDLE)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def signed(sender: int, body: Body, ring: RingId = RING) -> Frame:
    return sign_frame(KEYS, sender, ring, body, CLUSTER)


def verify(frame: Frame) -> bool:
    return signature_ok(KEYS, frame)


def members_of(ring: RingId) -> tuple[int, ...] | None:
    return MEMBERS if ring == RING else None


def prove(target: int, kind: str, *statements: Frame) -> str | None:
    return check_proof(Proof(target, kind, statements), verify, members_of, CFG)


def linked(prev_body: Token, maker: int, body: Token) -> tuple[Frame, Frame]:
    prev = signed(maker - 1 if maker > 1 else 4, prev_body)
    return prev, signed(maker, dataclasses.replace(body, prev=digest(encode(prev))))


def test_correct_transitions_break_no_rule() -> None:
    prev = token(5, 10, 8, 3)
    # Lowers the aru to its own, adds two frames of its own.
    ok = token(6, 12, 7, 2, fcc=2, frames=(FrameRef(11, bytes(32)), FrameRef(12, bytes(32))))
    assert transition_rule(prev, ok, 2, CFG) is None
    # The setter raises the aru it set; everyone had everything (aru_id 0).
    assert transition_rule(token(5, 10, 8, 2), token(6, 10, 10, 0), 2, CFG) is None


def test_each_rule_is_named() -> None:
    prev = token(5, 10, 8, 3)
    assert transition_rule(prev, token(6, 9, 8, 3), 2, CFG) == "seq"
    assert transition_rule(prev, token(6, 11, 8, 3), 2, CFG) == "frames"
    claim = (FrameRef(10, bytes(32)), FrameRef(11, bytes(32)))
    assert transition_rule(prev, token(6, 11, 8, 3, frames=claim), 2, CFG) == "frames"
    assert transition_rule(prev, token(6, 10, 10, 0), 2, CFG) == "aru"  # lie-aru
    assert transition_rule(prev, token(6, 10, 11, 2), 2, CFG) == "aru"  # above seq
    assert transition_rule(prev, token(6, 10, 8, 4), 2, CFG) == "aru_id"
    # Issue 16, finding 3: who lowers the aru names itself; keeping the
    # previous setter framed a correct member as the one holding it.
    assert transition_rule(prev, token(6, 10, 7, 3), 2, CFG) == "aru_id"
    assert transition_rule(prev, token(6, 10, 7, 2), 2, CFG) is None


U32_MAX = (1 << 32) - 1


def test_flow_control_claims_are_bounded_by_one_visit() -> None:
    """Issue 16, finding 2: fcc = 2^32-1 in one member's tokens zeroed every
    correct holder's window, and backlog = 2^32-1 cut each to one frame per
    visit, with no rule broken. A holder adds at most one visit's frames to
    the fcc and at least the new frames it lists; it adds at most what its
    queue holds to the backlog."""
    prev = token(5, 10, 8, 3, fcc=20, backlog=7)
    step = CFG.max_messages
    assert transition_rule(prev, token(6, 10, 8, 3, fcc=20 + step), 2, CFG) is None
    assert transition_rule(prev, token(6, 10, 8, 3, fcc=0), 2, CFG) is None  # all its own
    assert transition_rule(prev, token(6, 10, 8, 3, fcc=21 + step), 2, CFG) == "fcc"
    assert transition_rule(prev, token(6, 10, 8, 3, fcc=U32_MAX), 2, CFG) == "fcc"
    two = (FrameRef(11, bytes(32)), FrameRef(12, bytes(32)))
    assert transition_rule(prev, token(6, 12, 8, 3, fcc=1, frames=two), 2, CFG) == "fcc"
    most = 7 + backlog_step_max(CFG)
    assert transition_rule(prev, token(6, 10, 8, 3, backlog=most), 2, CFG) is None
    assert transition_rule(prev, token(6, 10, 8, 3, backlog=U32_MAX), 2, CFG) == "backlog"
    assert most < U32_MAX  # the default configuration leaves the lie provable


def test_a_flow_control_lie_is_a_proof() -> None:
    prev, bad = linked(token(5, 10, 8, 3, fcc=3), 2, token(6, 10, 8, 3, fcc=U32_MAX))
    assert prove(2, "rule:fcc", prev, bad) == "rule:fcc"
    prev, bad = linked(token(5, 10, 8, 3), 2, token(6, 10, 8, 3, backlog=U32_MAX))
    assert prove(2, "rule:backlog", prev, bad) == "rule:backlog"
    assert prove(2, "rule:fcc", prev, bad) is None


def test_a_proof_convicts_only_with_the_targets_own_signatures() -> None:
    prev, bad = linked(token(5, 10, 8, 3), 2, token(6, 10, 10, 0))
    assert prove(2, "rule:aru", prev, bad) == "rule:aru"
    assert prove(2, "rule:seq", prev, bad) is None  # the named rule must be the broken one
    assert prove(3, "rule:aru", prev, bad) is None  # not the target's token
    forged = dataclasses.replace(bad, signature=bytes(64))
    assert prove(2, "rule:aru", prev, forged) is None
    # Not linked by the target's prev digest: proves nothing.
    other = signed(1, token(5, 10, 5, 3))
    assert prove(2, "rule:aru", other, bad) is None


def test_equivocation_needs_two_different_tokens_for_one_hop() -> None:
    a = signed(2, token(6, 10, 10, 0))
    b = signed(2, token(6, 10, 10, 0, backlog=1))
    assert prove(2, "equivocation", a, b) == "equivocation"
    assert prove(2, "equivocation", a, a) is None
    c = signed(2, token(10, 10, 10, 0, backlog=1))
    assert prove(2, "equivocation", a, c) is None


def test_turn_and_successor_need_the_rings_membership() -> None:
    out_of_turn = signed(3, token(6, 10, 10, 0, succ=4))  # hop 6 is member 2's
    assert prove(3, "rule:turn", out_of_turn) == "rule:turn"
    unknown = signed(3, token(6, 10, 10, 0, succ=4), ring=RingId(1, 99))
    assert prove(3, "rule:turn", unknown) is None
    wrong_succ = signed(2, token(6, 10, 10, 0, succ=4))
    assert prove(2, "rule:succ", wrong_succ) == "rule:succ"
    assert prove(2, "rule:turn", wrong_succ) is None


def test_hop_zero_is_nobodys_turn_for_the_verifier_too() -> None:
    """The member that convicted a hop-0 token made a rule:turn proof that
    every other member refused (producer(0) is the last member, the maker):
    the successor kept the liar's joins and was evicted for the churn they
    caused (extreme-value property, TOKEN.hop = 0, seed 3)."""
    hop_zero = signed(4, token(0, 10, 10, 0, succ=1))
    assert prove(4, "rule:turn", hop_zero) == "rule:turn"


def heavy(recent_over: int) -> LoadReport:
    """A report over the hold limit, its signer having counted
    ``recent_over`` of its own last five over."""
    return LoadReport(0, 0, CFG.overload_hold_ms, 0, recent_over)


def test_overload_takes_three_distinct_overloaded_reports() -> None:
    reports = [signed(2, token(h, 10, 10, 0, load=heavy(n))) for n, h in enumerate((2, 6, 10), 1)]
    assert prove(2, "overload", *reports) == "overload"
    assert prove(2, "overload", *reports[:2]) is None
    assert prove(2, "overload", reports[0], reports[0], reports[1]) is None
    light = signed(2, token(14, 10, 10, 0))
    assert prove(2, "overload", reports[0], reports[1], light) is None


def join(ring_seq: int, load: LoadReport = IDLE) -> Join:
    return Join(ring_seq, MEMBERS, (), (), (), 0, load)


def test_overload_joins_count_once_per_membership_round() -> None:
    """A member at which every commit round dies sends no token, but its
    joins say, signed, how loaded it is: one report per round (its
    ``ring_seq``), whatever number of joins it re-sent in the round."""
    rounds = [signed(2, join(s, heavy(n))) for n, s in enumerate((12, 16, 20), 1)]
    assert prove(2, "overload", *rounds) == "overload"
    mixed = (signed(2, token(2, 10, 10, 0, load=heavy(3))), rounds[0], rounds[1])
    assert prove(2, "overload", *mixed) == "overload"
    resent = signed(2, join(12, dataclasses.replace(heavy(3), rx_queue=1)))
    assert prove(2, "overload", rounds[0], resent, rounds[1]) is None  # one round twice
    assert prove(2, "overload", rounds[0], rounds[2], signed(2, join(24))) is None  # not loaded
    assert prove(3, "overload", *rounds) is None  # of another member
    far = signed(2, join(40, heavy(3)), ring=RingId(1, RING.seq + 17 * 4))
    assert prove(2, "overload", rounds[0], rounds[1], far) is None  # rings too far apart


def test_overload_reports_far_apart_in_their_signer_s_count_prove_nothing() -> None:
    """Three pauses now and then (each report over the limit, but its
    signer's last five held only that one) are not an overload, however
    near their rings: a member that kept them cannot convict a correct node.
    The signer's own count says whether the overload was sustained."""
    apart = [signed(2, join(s, heavy(1))) for s in (12, 16, 20)]
    assert prove(2, "overload", *apart) is None
    assert prove(2, "overload", apart[0], apart[1], signed(2, join(24, heavy(3)))) == "overload"


def test_a_count_of_recent_reports_no_signer_can_make_convicts_it() -> None:
    """Its own last 2k - 1 reports: at most 5 of them over (``rule:load``)."""
    assert prove(2, "rule:load", signed(2, join(12, heavy(5)))) is None
    assert prove(2, "rule:load", signed(2, join(12, heavy(6)))) == "rule:load"
    assert prove(2, "rule:load", signed(2, token(2, 10, 10, 0, load=heavy(6)))) == "rule:load"


tokens = st.builds(
    Token,
    hop=st.integers(0, 50),
    succ=st.integers(1, 4),
    seq=st.integers(0, 50),
    aru=st.integers(0, 50),
    aru_id=st.integers(0, 4),
    rtr=st.just(()),
    fcc=st.integers(0, 5),
    backlog=st.integers(0, 5),
    frames=st.lists(st.builds(FrameRef, st.integers(0, 60), st.just(bytes(32))), max_size=3).map(
        tuple
    ),
    prev=st.just(bytes(32)),
    load=st.builds(
        LoadReport,
        st.integers(0, 3000),
        st.integers(0, 3000),
        st.integers(0, 900),
        st.integers(0, 1000),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), tokens), min_size=1, max_size=4),
    st.sampled_from(
        [
            "equivocation",
            "overload",
            "rule:turn",
            "rule:succ",
            "rule:seq",
            "rule:frames",
            "rule:aru",
            "rule:aru_id",
            "rule:nonsense",
        ]
    ),
    st.integers(1, 4),
)
def test_check_proof_never_raises(
    statements: list[tuple[int, Token]], kind: str, target: int
) -> None:
    frames = tuple(signed(sender, body) for sender, body in statements)
    result = prove(target, kind, *frames)
    assert result in (None, kind)
    if result is not None:
        assert any(f.sender == target for f in frames)


def accusation(accuser: int, target: int, ring: RingId = RING) -> Frame:
    return signed(accuser, Accusation(target, 1, "token_loss", 100), ring)


def test_f_plus_one_accusers_of_the_current_ring() -> None:
    det = Detector(1, tuple(range(1, 8)), CFG)  # 7 nodes: f = 2
    assert det.add_accusation(accusation(2, 5), 5, True)
    assert not det.add_accusation(accusation(2, 5), 5, True)  # once per accuser
    assert not det.add_accusation(accusation(5, 5), 5, True)  # not about itself
    old_ring = accusation(3, 5, RingId(1, 4))
    assert not det.add_accusation(old_ring, 5, False)  # its ring does not count here
    assert det.add_accusation(accusation(3, 5), 5, True)
    assert len(det.accusers(5, RING)) == 2 < det.f + 1
    assert det.add_accusation(accusation(4, 5), 5, True)
    assert len(det.accusers(5, RING)) == det.f + 1


def test_scores_decay_and_cooldowns_double() -> None:
    det = Detector(1, (1, 2, 3, 4), CFG)
    det.score(0.0, 2, "token_loss")
    half = CFG.suspicion_half_life_ms / 1000
    assert abs(det.total(half, 2) - 20.0) < 0.01
    assert det.score(0.0, 1, "token_loss") == 0.0  # never ourselves
    det.convict(0.0, 2, "overload", True, ())
    assert det.cooldown_s(2) == CFG.evict_cooldown_ms / 1000
    assert det.banned(1.0, 2) and not det.banned(3.1, 2)
    det.forgive(4.0, 2, 12)
    det.convict(5.0, 2, "overload", True, ())
    assert det.cooldown_s(2) == 2 * CFG.evict_cooldown_ms / 1000
    det.forgive(20.0, 2, 16)
    det.convict(21.0, 2, "accused", False, ())
    assert det.cooldown_s(2) == 4 * CFG.evict_cooldown_accused_ms / 1000
    det.forgive(200.0, 2, 20)
    det.convict(201.0, 2, "equivocation", True, ())
    assert det.cooldown_s(2) == CFG.evict_cooldown_max_ms / 1000


def test_a_token_larger_than_one_visit_may_make_is_a_proof() -> None:
    refs = tuple(FrameRef(s, bytes(32)) for s in range(11, 11 + CFG.max_messages + 1))
    big = signed(2, token(6, 10 + len(refs), 8, 2, frames=refs))
    assert prove(2, "rule:size", big) == "rule:size"
    ok = signed(2, token(6, 10 + CFG.max_messages, 8, 2, frames=refs[:-1]))
    assert prove(2, "rule:size", ok) is None


def test_a_mislabelled_copy_does_not_shadow_the_real_proof() -> None:
    """The checked-proof cache is keyed by target, kind and statements: an
    accomplice's refused variant must not make the real proof be ignored."""
    from ringward.engine import Engine, accusations

    engine = Engine(1, MEMBERS, security=KEYS.security(1))
    engine.ring, engine.members = RING, MEMBERS
    engine.known_rings[RING] = MEMBERS
    prev, bad = linked(token(5, 10, 8, 3), 2, token(6, 10, 10, 0))
    wrong = signed(3, Proof(2, "rule:seq", (prev, bad)))
    accusations.on_proof(engine, wrong)
    assert 2 not in engine.detector.verdicts
    right = signed(3, Proof(2, "rule:aru", (prev, bad)))
    accusations.on_proof(engine, right)
    assert engine.detector.verdicts[2].reason == "rule:aru"


def test_an_installed_ring_leaves_no_commit_round_to_blame() -> None:
    """The commit watch of a round that completed must not outlive it: the
    representative never observes hop 2n (it is its own turn), and its watch
    stayed at hop 2n-1, so the next round's first hop blamed the member
    holding that hop (commit_loss) for a round that had succeeded."""
    from ringward.sim.runner import Scenario, run_scenario
    from ringward.sim.world import World

    worlds: list[World] = []
    result = run_scenario(
        Scenario(nodes=4, seed=1, duration=1.0, rate=20.0, security=True),
        setup=worlds.append,
    )
    assert result.ok, result.failure_text()
    engines = [worlds[0].engine(n) for n in (1, 2, 3, 4)]
    watches = [getattr(getattr(e, "detector", None), "commit_watch", "?") for e in engines]
    assert watches == [None, None, None, None]


def test_a_load_report_no_store_can_make_convicts_its_signer_in_a_join_too() -> None:
    """memory_permille counts frames held per window, at most 1000: a join
    that says more is a lie, proven as in a token (``rule:load``)."""
    lie = signed(2, join(12, LoadReport(0, 0, 0, 1001)))
    assert prove(2, "rule:load", lie) == "rule:load"
    assert prove(2, "rule:load", signed(2, join(12, LoadReport(0, 0, 0, 1000)))) is None
