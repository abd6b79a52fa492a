"""The verified token chain (engine/chain.py): a token's aru counts for safe
delivery only once every hop up to it is linked and its transition checked.

Driven on a real engine put into an operational ring by hand, with tokens
signed by the simulator's keys."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import sign_frame
from ringward.engine import Engine, EngineConfig, chain
from ringward.engine.evidence import digest
from ringward.engine.membership import State
from ringward.engine.ringstore import RingStore
from ringward.engine.tokenstate import LINKED_TO_MAX
from ringward.sim.keys import SimKeys
from ringward.wire import Frame, LoadReport, RingId, Token, encode

KEYS = SimKeys(5, (1, 2, 3, 4))
RING = RingId(1, 8)
MEMBERS = (1, 2, 3, 4)
IDLE = LoadReport(0, 0, 0, 0)


def engine(*, detector: bool = True) -> Engine:
    cfg = EngineConfig(fault_detector=detector)
    e = Engine(1, MEMBERS, config=cfg, security=KEYS.security(1))
    e.state, e.ring, e.members = State.OPERATIONAL, RING, MEMBERS
    e.store = RingStore(RING, 64)
    e.store.aru = 50  # every frame up to 50 is held here
    return e


def signed(body: Token) -> tuple[Frame, bytes]:
    frame = sign_frame(KEYS, MEMBERS[(body.hop - 1) % 4], RING, body)
    return frame, encode(frame)


def chain_of(arus: list[int], seq: int = 50) -> list[tuple[Frame, bytes]]:
    """Tokens for hops 1..len(arus), each linked to the one before."""
    out: list[tuple[Frame, bytes]] = []
    prev = digest(b"")
    for hop, aru in enumerate(arus, start=1):
        succ = MEMBERS[hop % 4]
        body = Token(
            hop,
            succ,
            seq,
            aru,
            0 if aru == seq else MEMBERS[(hop - 1) % 4],
            (),
            0,
            0,
            (),
            prev,
            IDLE,
        )
        frame, raw = signed(body)
        out.append((frame, raw))
        prev = digest(raw)
    return out


def feed(e: Engine, tokens: list[tuple[Frame, bytes]]) -> None:
    assert e.store is not None
    for frame, raw in tokens:
        assert chain.add(e, frame, raw, MEMBERS, e.store)


def test_linked_tokens_mark_safe_by_the_two_visit_rule() -> None:
    e = engine()
    feed(e, chain_of([50] * 6))
    assert e.tokens.links.linked == 6
    assert e.store is not None and e.store.safe_upto == 50


def test_a_token_arriving_early_waits_for_its_predecessor() -> None:
    e = engine()
    tokens = chain_of([50] * 6)
    feed(e, tokens[:2] + tokens[3:])
    assert e.tokens.links.linked == 2 and e.store is not None and e.store.safe_upto == 0
    feed(e, [tokens[2]])
    assert e.tokens.links.linked == 6 and e.store.safe_upto == 50


def test_a_token_with_a_broken_link_never_counts() -> None:
    """break-link: random ``prev`` and a raised aru; the well-linked tokens
    after it must not let its aru through either."""
    e = engine()
    tokens = chain_of([50] * 8)
    body = tokens[4][0].body
    assert isinstance(body, Token)
    bad = signed(dataclasses.replace(body, prev=bytes(32)))
    feed(e, [*tokens[:4], bad, *tokens[5:]])
    assert e.tokens.links.linked == 4
    assert e.store is not None and e.store.safe_upto == 0
    assert e.tokens.links.link_ask[0] == 4  # it asked for the version hop 5 links to


def test_a_transition_checked_when_the_link_closes_late() -> None:
    """Hop 3 lowers the aru (its maker lacks 10..), hop 4 raises it again
    though it is not the aru's holder: a rule break, proven when hop 3
    arrives after hop 4."""
    e = engine()
    tokens = chain_of([50, 50, 9, 50, 50])
    feed(e, tokens[:2])
    frame, raw = tokens[3]
    assert chain.add(e, frame, raw, MEMBERS, e.store)  # type: ignore[arg-type]
    frame, raw = tokens[2]
    assert not chain.add(e, frame, raw, MEMBERS, e.store)  # type: ignore[arg-type]
    assert e.detector.verdicts[4].reason == "rule:aru"
    assert e.state is State.GATHER


def _safe_after(tokens: list[tuple[Frame, bytes]]) -> tuple[int, int]:
    e = engine(detector=False)
    feed(e, tokens)
    assert e.store is not None
    return e.tokens.links.linked, e.store.safe_upto


@settings(max_examples=60, deadline=None)
@given(
    arus=st.lists(st.integers(0, 50), min_size=1, max_size=14),
    order=st.randoms(use_true_random=False),
    broken=st.none() | st.integers(0, 13),
)
def test_arrival_order_never_changes_what_is_safe(
    arus: list[int], order: random.Random, broken: int | None
) -> None:
    """Whatever order the tokens arrive in, the chain links the same prefix
    and marks the same seq safe as in order; past a token whose ``prev``
    is broken, nothing links and nothing counts."""
    tokens = chain_of(arus)
    if broken is not None and broken < len(tokens):
        body = tokens[broken][0].body
        assert isinstance(body, Token)
        tokens[broken] = signed(dataclasses.replace(body, prev=bytes(32)))
        expect = _safe_after(tokens[:broken])
    else:
        expect = _safe_after(tokens)
    shuffled = list(tokens)
    order.shuffle(shuffled)
    assert _safe_after(shuffled) == expect
    assert expect[0] == (len(tokens) if broken is None or broken >= len(tokens) else broken)


def test_link_asks_go_out_once_per_period_then_the_maker_is_accused() -> None:
    """Datagrams that poll the chain between two asks must not push the
    link timer back: they did, asks went out every other period, and the
    token timeout restarted the round before the blame, every round
    (Byzantine soak seed 1115: the break-link member was never evicted and
    the ring stayed in recovery)."""
    period = EngineConfig().token_retransmit_ms / 1000
    e = engine()
    tokens = chain_of([50] * 7)
    body = tokens[5][0].body  # hop 6, made by node 2
    assert isinstance(body, Token)
    bad = signed(dataclasses.replace(body, prev=bytes(32)))
    start = 2.0
    e.now = start
    feed(e, [*tokens[:5], bad])  # the first ask goes out now
    assert e.tokens.links.link_ask[1:] == (start, 1)
    asks = [start]
    for tries in (2, 3):
        # A datagram polls half-way: too early to ask again.
        e.now = asks[-1] + period / 2
        assert e.store is not None and chain.poll(e, MEMBERS, e.store)
        assert e.tokens.links.link_ask[2] == tries - 1
        due = e.timer_due("link")
        assert due is not None and due <= asks[-1] + period
        e.tick(due)
        assert e.tokens.links.link_ask[2] == tries
        asks.append(due)
    due = e.timer_due("link")
    assert due is not None
    e.tick(due)
    assert e.tokens.links.link_blamed and e.notes["accuse:broken_link"] == 1
    assert due - start <= 3 * period + 1e-9  # within a token timeout (5 periods)


def test_a_link_older_than_a_successor_keeps_is_not_blamed_on_it() -> None:
    """Issue 16, finding 7: a successor keeps the versions its own last
    ``LINKED_TO_MAX`` tokens linked to, and no more. A member whose chain
    lags further behind the ring than that asks about a version nobody has
    to keep any longer: its own lag, not a broken link (the asks still go
    out, and a chain that stays stuck restarts the ring)."""
    period = EngineConfig().token_retransmit_ms / 1000
    e = engine()
    tokens = chain_of([50] * 7)
    body = tokens[5][0].body
    assert isinstance(body, Token)
    bad = signed(dataclasses.replace(body, prev=bytes(32)))
    e.now = 2.0
    feed(e, [*tokens[:5], bad])
    e.tokens.hops.seen = 6 + LINKED_TO_MAX * len(MEMBERS)  # the ring moved on meanwhile
    for _ in range(4):
        due = e.timer_due("link")
        assert due is not None
        e.tick(due)
    assert e.tokens.links.link_ask[2] == 3  # asked as often
    assert e.notes["accuse:broken_link"] == 0 and e.detector.total(e.now, 2) == 0
    assert e.now - 2.0 <= 4 * period + 1e-9
