"""Unit tests of the token bookkeeping's parts (engine/tokenstate.py), of
what the fault detector watches (engine/watch.py) and of the detector's
bookkeeping methods: each keeps its own bounds whatever hops it is shown,
and changes only through its methods."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.engine import EngineConfig
from ringward.engine.config import Timing
from ringward.engine.detector import Detector, LossBlame
from ringward.engine.tokenstate import LINKED_TO_MAX, Holder, Hops, Links, TokenState, Visit
from ringward.engine.watch import NEVER_S, LoadMeter, TokenWatch
from ringward.wire import Frame, LoadReport, RingId, Token

R = RingId(1, 4)
MEMBERS = (1, 2, 3, 4)
TRACKED, KEPT = 64 * len(MEMBERS), 64


def _token(hop: int, rtr: tuple[int, ...] = ()) -> Frame:
    tk = Token(hop, 1, 0, 0, 0, rtr, 0, 0, (), bytes(32), LoadReport(0, 0, 0, 0))
    return Frame(bytes(16), 1, R, tk, bytes(64))


def test_hops_track_a_contiguous_prefix_and_ask_for_gaps() -> None:
    hops = Hops()
    for hop in (1, 2, 4, 5):
        hops.track(hop, TRACKED, KEPT)
    assert hops.contig == 2 and hops.ahead == {4, 5}
    asks = hops.due_asks(6, MEMBERS, me=1, now=10.0, retry_s=0.25, limits_=(8, 5))
    assert [(a.hop, a.producer, a.tries) for a in asks] == [(3, 3, 0)]
    # Asked once per retry period, then given up after its tries.
    assert hops.due_asks(6, MEMBERS, 1, 10.125, 0.25, (8, 5)) == []
    for i in range(1, 5):
        (ask,) = hops.due_asks(6, MEMBERS, 1, 10.0 + 0.25 * i, 0.25, (8, 5))
        assert ask.tries == i
    assert hops.due_asks(6, MEMBERS, 1, 20.0, 0.25, (8, 5)) == []
    hops.track(6, TRACKED, KEPT)
    assert hops.contig == 6 and not hops.asked and not hops.ahead


def test_hops_never_ask_for_their_own_hops() -> None:
    hops = Hops()
    hops.track(3, TRACKED, KEPT)
    # Hop 1 is made by member 1 (us), hop 2 by member 2.
    asks = hops.due_asks(3, MEMBERS, me=1, now=1.0, retry_s=0.2, limits_=(8, 5))
    assert [a.hop for a in asks] == [2]


@settings(max_examples=100)
@given(st.lists(st.integers(1, 1 << 40), max_size=60))
def test_hops_stay_bounded_whatever_hops_are_claimed(claimed: list[int]) -> None:
    hops = Hops()
    now = 0.0
    for hop in claimed:
        hops.track(hop, TRACKED, KEPT)
        hops.due_asks(hop, MEMBERS, 1, now, 0.2, (8, 5))
        hops.record(hop, 0, len(MEMBERS))
        now += 1.0
    assert len(hops.ahead) <= TRACKED + KEPT
    assert len(hops.asked) <= TRACKED + KEPT
    assert len(hops.seq_at) <= 2 * len(MEMBERS) + 2


def test_hops_record_keeps_two_rotations_of_seqs() -> None:
    hops = Hops()
    for hop in range(1, 30):
        hops.record(hop, 10 * hop, len(MEMBERS))
    assert hops.seen == 29 and min(hops.seq_at) == 29 - 2 * len(MEMBERS)
    assert hops.seq_one_rotation_ago(29, len(MEMBERS)) == 260
    hops.made(30, 300, len(MEMBERS))
    assert hops.done == 29 and hops.seen == 30


def test_hops_answer_each_request_once_per_gap_and_forget_the_oldest() -> None:
    hops = Hops()
    key = (2, R, 7)
    assert hops.answer(key, 1.0, 0.1, kept=2)
    assert not hops.answer(key, 1.05, 0.1, kept=2)
    assert hops.answer(key, 1.2, 0.1, kept=2)
    assert hops.answer((3, R, 7), 1.2, 0.1, kept=2)
    assert hops.answer((4, R, 7), 1.2, 0.1, kept=2)
    assert len(hops.answered) == 2 and key not in hops.answered


def test_links_keep_what_our_last_tokens_linked_to() -> None:
    """Counted, not timed (engine/tokenstate.py, LINKED_TO_MAX)."""
    links = Links()
    for hop in range(LINKED_TO_MAX + 10):
        links.keep_linked_to(hop, b"t%d" % hop)
    assert sorted(links.linked_to) == list(range(10, LINKED_TO_MAX + 10))
    assert links.linked_to[LINKED_TO_MAX + 9] == b"t%d" % (LINKED_TO_MAX + 9)
    assert links.covers(0) and not links.covers(1)


def test_holder_visits() -> None:
    me = Holder()
    frame = _token(3)
    me.hold(frame, b"raw", for_link=True)
    assert me.held_for_link and me.take() == (frame, b"raw") and me.held is None
    idle = Holder()
    idle.hold(frame, b"raw")
    assert not idle.held_for_link and idle.held is not None
    me.passed_on(5, b"five")
    assert not me.superseded(5)
    assert me.superseded(6)
    assert not me.superseded(7)  # cleared: nothing left to re-send
    assert [me.count_idle(True) for _ in range(3)] == [1, 2, 3]
    assert me.count_idle(False) == 0
    me.visited(Visit(1, 0, 1))
    me.visited(Visit(2, 0, 2))
    assert me.prev_visit == Visit(2, 0, 2) and me.prev_visit2 == Visit(1, 0, 1)


def test_token_state_reset_forgets_every_part() -> None:
    ts = TokenState()
    ts.hops.record(5, 5, 4)
    ts.links.linked = 5
    ts.holder.passed_on(5, b"x")
    ts.reset()
    assert ts == TokenState()


def test_token_watch_keeps_two_rotations_relative_to_the_newest() -> None:
    watch = TokenWatch()
    n = len(MEMBERS)
    for hop in range(1, 20):
        watch.remember(hop, b"%d" % hop, _token(hop), float(hop), newest=hop, kept=2 * n)
    assert sorted(watch.raw_at) == list(range(12, 20)) == sorted(watch.seen_at)
    # A replayed old hop is not kept.
    watch.remember(3, b"old", _token(3), 30.0, newest=19, kept=2 * n)
    assert 3 not in watch.raw_at


def test_token_watch_requests_and_aru() -> None:
    watch = TokenWatch()
    watch.watch_requests(_token(1, rtr=(7,)).body, 4)  # type: ignore[arg-type]
    watch.watch_requests(_token(2, rtr=(7, 8)).body, 4)  # type: ignore[arg-type]
    assert watch.requested_since(7, 99) == 1 and watch.requested_since(9, 99) == 99
    assert sorted(watch.standing(1)) == [7]
    watch.served(7)
    assert watch.standing(2) == [8]
    watch.watch_requests(_token(9).body, 4)  # type: ignore[arg-type]
    assert not watch.rtr_watch  # no longer asked for within a rotation
    assert [watch.aru_held(True, t) for t in (1.0, 2.0, 3.0)] == [1, 2, 3]
    assert not watch.aru_suspect_due(3.0, visits=3, span_s=5.0, most=100)
    assert watch.aru_suspect_due(6.0, visits=3, span_s=5.0, most=100)
    assert not watch.aru_suspect_due(7.0, visits=3, span_s=5.0, most=100)  # again after as long
    # ... or after ``most`` more visits, however short the time.
    assert [watch.aru_held(True, 7.0) for _ in range(2)] == [4, 5]
    assert watch.aru_suspect_due(7.0, visits=3, span_s=5.0, most=2)
    assert not watch.aru_suspect_due(7.0, visits=3, span_s=5.0, most=2)
    assert watch.aru_held(False, 8.0) == 0
    watch.passed(3, 8.0)
    assert (watch.last_succ, watch.last_seen_t) == (3, 8.0)


def test_load_meter_peak_is_taken_once() -> None:
    load = LoadMeter()
    load.note(-5, 0.3)
    load.note(10, 0.1)
    assert (load.queue, load.wait_s) == (10, 0.1)
    assert load.take_peak() == 0.3 and load.take_peak() == 0.0


def test_detector_new_ring_watches_afresh_and_keeps_the_rest() -> None:
    det = Detector(1, MEMBERS, EngineConfig())
    det.tokens.passed(2, 1.0)
    det.overload_run[2] = []
    det.new_ring(5.0)
    assert det.tokens == TokenWatch(ring_start_t=5.0) and 2 in det.overload_run
    det.spent(2)
    assert 2 not in det.overload_run
    det.new_ring(NEVER_S)
    assert det.tokens == TokenWatch()


def test_detector_cooldowns_in_seconds_match_milliseconds() -> None:
    """The cool-down doubles in seconds exactly as it did in milliseconds."""
    cfg = EngineConfig(evict_cooldown_ms=3001, evict_cooldown_max_ms=300_000)
    det = Detector(1, MEMBERS, cfg)
    assert Timing.of(cfg).evict_cooldown_s == 3.001
    for k in range(1, 12):
        det.convict(float(k), 2, "overload", True, ())
        ms = min(cfg.evict_cooldown_max_ms, cfg.evict_cooldown_ms * (1 << (k - 1)))
        assert det.cooldown_s(2) == ms / 1000.0
        det.forgive(float(k), 2, 0)


def test_detector_reviews_each_accusation_once_per_rotation() -> None:
    det = Detector(1, MEMBERS, EngineConfig())
    assert det.heard(1.0, 2, 3, R, hop=10, rotation=4)
    det.review(9.0, 2, 3, R)
    assert not det.heard(1.5, 2, 3, R, hop=12, rotation=4)  # the same rotation
    assert det.heard(2.0, 2, 3, R, hop=14, rotation=4)
    det.review(10.0, 2, 3, R)
    assert det.accused_since(3, 1.5, besides=4) == [2]
    assert det.accused_since(3, 1.5, besides=2) == []
    assert det.reviews_due(8.0) == []
    assert [r.due for r in det.reviews_due(10.0)] == [9.0, 10.0]
    assert det.reviews_due(20.0) == []


def test_detector_blame_is_taken_by_its_node_only() -> None:
    det = Detector(1, MEMBERS, EngineConfig())
    det.loss_blame = LossBlame(3, 1.0)
    assert det.take_blame(2) is None and det.loss_blame is not None
    assert det.take_blame(3) == LossBlame(3, 1.0) and det.loss_blame is None
