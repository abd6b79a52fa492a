"""When a member's own load reports convict it of overload.

An overloaded node makes tokens get lost: each loss ends the ring, and the
first visit of the next ring finds little queued, so a short hold sits
between long ones. Before, only reports "in a row" counted and a short one
restarted the count, and a token that arrived after its loss had started a
membership round was not judged at all: 4 nodes, seed 2, slowed 50x for
4 s, reported over, over, short, over, over (two of them late) and was
never evicted while overloaded. Driven here on a real engine with tokens
signed by the simulator's keys, through ``receive``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sign_frame
from ringward.byzantine import parse_spec
from ringward.engine import Engine, EngineConfig
from ringward.engine.evidence import OVERLOAD_RING_SPAN
from ringward.engine.membership import State
from ringward.engine.ringstore import RingStore
from ringward.eventlog import EvictEvent, RejoinEvent
from ringward.sim import byzantine
from ringward.sim.byzantine import run_byzantine
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Scenario
from ringward.wire import Join, LoadReport, Proof, RingId, Token, encode

ROSTER = (1, 2, 3, 4)
KEYS = SimKeys(11, ROSTER)
RING = RingId(1, 8)
CFG = EngineConfig()
LONG = CFG.overload_hold_ms
SHORT = 10


def engine() -> Engine:
    e = Engine(1, ROSTER, config=CFG, security=KEYS.security(1))
    e.state, e.ring, e.members, e.ring_seq_max = State.OPERATIONAL, RING, ROSTER, RING.seq
    e.store = RingStore(RING, CFG.receive_window_frames_max)
    e.now = 10.0
    # The token was lost: node 1 gathers, still holding ring 8's store.
    e.enter_gather(e.now, reason="token_loss")
    assert e.state is State.GATHER
    return e


def token(hop: int, hold_ms: int, sender: int = 4, recent_over: int = 0) -> bytes:
    """Node 4's (late) token of ring 8 at ``hop``, reporting ``hold_ms``
    and ``recent_over`` of its own last five reports over the limits."""
    succ = ROSTER[ROSTER.index(sender) + 1 - len(ROSTER)]
    load = LoadReport(0, 0, hold_ms, 0, recent_over)
    body = Token(hop, succ, 0, 0, 0, (), 0, 0, (), bytes(32), load)
    return encode(sign_frame(KEYS, sender, RING, body))


def counts(holds: Sequence[int]) -> list[int]:
    """What a correct node signs as ``recent_over`` with each of these
    reports: how many of its last 2k - 1 were over the limits."""
    kept = 2 * CFG.overload_reports - 1
    return [sum(h >= LONG for h in holds[max(0, i - kept + 1) : i + 1]) for i in range(len(holds))]


def feed(e: Engine, holds: list[int], first_hop: int = 4, before: Sequence[int] = ()) -> None:
    # Distinct hops: two reports for one hop would be an equivocation.
    own = counts([*before, *holds])[len(before) :]
    for i, (hold, n) in enumerate(zip(holds, own, strict=True)):
        e.receive(11.0 + i / 10, token(first_hop + 4 * i, hold, recent_over=n))


def test_a_majority_of_recent_reports_convicts_though_not_in_a_row() -> None:
    e = engine()
    feed(e, [LONG, LONG, SHORT])
    assert e.detector.verdicts.get(4) is None
    e.receive(12.0, token(20, LONG, recent_over=3))
    v = e.detector.verdicts.get(4)
    assert v is not None and v.reason == "overload"
    assert e.notes["proof:overload"] == 1


def test_late_tokens_of_the_ring_just_left_are_judged() -> None:
    e = engine()
    feed(e, [LONG, LONG, LONG])
    assert e.drops["stale_token"] == 3
    v = e.detector.verdicts.get(4)
    assert v is not None and v.reason == "overload"
    g = e.gather
    assert g is not None and 4 in g.fail


def test_occasional_long_holds_are_forgotten() -> None:
    e = engine()
    # One long hold in every three visits never reaches a majority of five.
    feed(e, [LONG, SHORT, SHORT] * 5)
    assert e.detector.verdicts.get(4) is None
    assert e.notes["proof:overload"] == 0


def test_copies_of_one_report_count_once() -> None:
    e = engine()
    for t in (11.0, 11.1, 11.2):
        e.receive(t, token(4, LONG, recent_over=1))
    e.receive(11.3, token(8, LONG, recent_over=2))
    assert e.detector.verdicts.get(4) is None
    e.receive(11.4, token(12, LONG, recent_over=3))
    assert e.detector.verdicts.get(4) is not None


def test_reports_watched_stay_bounded() -> None:
    e = engine()
    feed(e, [LONG, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT])
    # Nothing left worth watching: the member is dropped.
    assert 4 not in e.detector.overload_run
    first = [LONG, SHORT, SHORT, SHORT, SHORT, SHORT, SHORT]
    feed(e, [SHORT, LONG, SHORT] * 10, first_hop=4 + 4 * 7, before=first)
    assert len(e.detector.overload_run[4]) <= 2 * CFG.overload_reports - 1


@pytest.mark.heavy
def test_four_nodes_seed_2_overload_is_evicted_while_overloaded() -> None:
    scenario = Scenario(nodes=4, seed=2, duration=10.0, rate=50.0, security=True)
    outcome = run_byzantine(scenario, parse_spec("4:overload", 4))
    assert outcome.held, outcome.detail
    # Overloaded from 1 s to 5 s: evicted before it recovered.
    assert outcome.detected_s[4] < 4.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=14))
def test_a_proof_is_made_exactly_when_some_five_reports_hold_three_overloaded(
    overloaded: list[bool],
) -> None:
    """Whatever the order of long and short holds, the member is convicted
    as soon as, and only if, k of its last 2k - 1 reports were overloaded."""
    k = CFG.overload_reports
    e = engine()
    holds = [LONG if over else SHORT for over in overloaded]
    for i, (hold, n) in enumerate(zip(holds, counts(holds), strict=True)):
        e.receive(11.0 + i / 10, token(4 + 4 * i, hold, recent_over=n))
        window = overloaded[max(0, i - 2 * k + 2) : i + 1]
        expect = any(sum(overloaded[max(0, j - 2 * k + 2) : j + 1]) >= k for j in range(i + 1))
        assert (e.detector.verdicts.get(4) is not None) == expect, (i, window)


class _Run:
    """The two things the judge reads of a simulator run."""

    def __init__(self, events: list[object]) -> None:
        self.events = events
        self.ok = True


def _overload_verdict(events: Sequence[object]) -> str:
    run = _Run(list(events))
    spec = {4: ("overload", None)}
    return byzantine._judge(run, spec, 1.0, 5.0).detail  # type: ignore[arg-type]


def test_the_simulator_requires_overload_evictions_while_overloaded() -> None:
    """Overloaded from 1 s to 5 s: evicted at 4.5 s and back is what the
    issue asks; an eviction after it became healthy (past the grace) is
    not, even if it rejoins again."""
    evicted = [EvictEvent(t=4.5, node=n, target=4, reason="overload", proof=True) for n in (1, 2)]
    back = [RejoinEvent(t=8.0, node=4)]
    assert _overload_verdict([*evicted, *back]).startswith("detection s")
    late = 5.0 + byzantine.OVERLOAD_GRACE_S + 0.5
    again = [EvictEvent(t=late, node=1, target=4, reason="overload", proof=True)]
    assert "healthy since" in _overload_verdict([*evicted, *back, *again])
    assert "rejoined=False" in _overload_verdict(evicted)


def _proof(prover: int, reports: Sequence[tuple[RingId, int]]) -> bytes:
    """Node ``prover``'s overload proof against node 4 from its reports
    (ring, hop), each over the hold limit."""
    statements = []
    for n, (ring, hop) in enumerate(reports, 1):
        load = LoadReport(0, 0, LONG, 0, n)
        body = Token(hop, 1, 0, 0, 0, (), 0, 0, (), bytes(32), load)
        statements.append(sign_frame(KEYS, 4, ring, body))
    return encode(sign_frame(KEYS, prover, RING, Proof(4, "overload", tuple(statements))))


def test_overload_reports_spread_over_many_rings_prove_nothing() -> None:
    """Three overloaded reports from rings far apart are not a sustained
    overload: a member that kept three GC-pause reports of a correct node
    could convict it with them, hours later."""
    e = engine()
    far = [(RingId(1, 8 + k * OVERLOAD_RING_SPAN), 4) for k in range(3)]
    e.receive(11.0, _proof(2, far))
    assert e.detector.verdicts.get(4) is None
    assert e.drops["proof_refused"] == 1
    near = [(RingId(1, 8 + 4 * k), 4) for k in range(3)]
    e.receive(11.1, _proof(2, near))
    assert e.detector.verdicts.get(4) is not None


def test_an_old_overload_proof_is_stale_after_a_restart() -> None:
    """A proof of rings well before what this node has seen (its persisted
    ring seq survives a restart, unlike the amnesty) is not acted on."""
    e = engine()
    e.ring_seq_max = RING.seq + OVERLOAD_RING_SPAN + 4
    e.receive(11.0, _proof(2, [(RING, 4), (RING, 8), (RING, 12)]))
    assert e.detector.verdicts.get(4) is None
    assert e.drops["proof_stale"] == 1


def join(ring_seq: int, hold_ms: int, recent_over: int, sender: int = 4) -> bytes:
    """Node 4's join of the round at ``ring_seq``, reporting ``hold_ms``."""
    body = Join(ring_seq, ROSTER, (), (), (), 0, LoadReport(0, 0, hold_ms, 0, recent_over))
    return encode(sign_frame(KEYS, sender, RING, body))


def test_joins_of_a_member_no_ring_forms_with_convict_it_once_per_round() -> None:
    """Every commit round died at the overloaded member, so it forwarded no
    token and nothing it signed said it was overloaded: it was evicted by
    accusation (commit losses) instead, or not at all (sim --nodes 7
    --byzantine 7:overload, seed 8). Its joins carry its load: three rounds
    over the limits convict it; one round's re-sent joins count once."""
    e = engine()
    for i in range(6):  # one round, its joins re-sent: one report
        e.receive(11.0 + i / 20, join(RING.seq + 4, LONG, 1))
    assert e.detector.verdicts.get(4) is None
    e.receive(12.0, join(RING.seq + 8, SHORT, 1))
    e.receive(13.0, join(RING.seq + 12, LONG, 2))
    assert e.detector.verdicts.get(4) is None
    e.receive(14.0, join(RING.seq + 16, LONG, 3))
    verdict = e.detector.verdicts.get(4)
    assert verdict is not None and verdict.reason == "overload"


def test_a_round_counts_as_loaded_if_any_of_its_joins_was() -> None:
    """A round's first join may come before the member fell behind: a
    later join of the same round that reports the overload replaces it."""
    e = engine()
    for n, seq in enumerate((RING.seq + 4, RING.seq + 8, RING.seq + 12)):
        e.receive(11.0, join(seq, SHORT, n))
        assert e.detector.verdicts.get(4) is None
        e.receive(11.5, join(seq, LONG, n + 1))
    verdict = e.detector.verdicts.get(4)
    assert verdict is not None and verdict.reason == "overload"


def test_reports_far_apart_in_their_signer_s_count_convict_nobody() -> None:
    """A correct node paused now and then: each pause is one report over
    the limit, and its own count of its last five says one. However many
    of them a member sees, and however near their rings, none convicts it
    (before, any three within 16 ring changes did: a member that kept them
    could get it rejected)."""
    e = engine()
    for i in range(6):
        e.receive(11.0 + i, token(4 + 4 * i, LONG, recent_over=1))
    assert e.detector.verdicts.get(4) is None
    assert e.notes["proof:overload"] == 0


def test_an_overload_proof_from_before_a_restart_is_spent() -> None:
    """The amnesty of a node forgiven for overload lived in memory only: a
    member that restarted took a replayed proof of that old overload (its
    rings within 16 ring changes) and rejected the node again. Overload
    evidence of rings up to the ring seq a node restarts with is spent;
    evidence of later rings convicts as before."""
    e = Engine(1, ROSTER, config=CFG, security=KEYS.security(1), ring_seq=RING.seq + 8)
    e.receive(11.0, _proof(2, [(RING, 4), (RING, 8), (RingId(1, RING.seq + 8), 12)]))
    assert e.detector.verdicts.get(4) is None
    assert e.drops["proof_stale"] == 1
    later = RingId(1, RING.seq + 12)
    e.receive(11.1, _proof(2, [(later, 4), (later, 8), (later, 12)]))
    verdict = e.detector.verdicts.get(4)
    assert verdict is not None and verdict.reason == "overload"
