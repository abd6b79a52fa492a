"""The idle ring (engine/idle.py, docs/protocol.md "The idle ring"): an idle
ring holds the token at every quiet visit, a message submitted anywhere wakes
it and is delivered within a few hops, a wake flood costs bounded work, and
a held token is never taken for a slow or lost one. Everything is counted in
hops, datagrams and virtual time, never wall time."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ring_harness import Cluster
from ringward.engine import EngineConfig
from ringward.engine.config import IDLE_HOLD_RETRANSMITS, Timing
from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
from ringward.engine.versions import pin_depth
from ringward.wire import Token, TokenRequest, decode
from ringward.wire.frame import peek
from ringward.wire.messages import Kind

# The defaults but no rekey: a 1,000 ms token timeout, a 100 ms hold.
CONFIG = EngineConfig(rekey_interval_ms=0)
HOLD_S = Timing.of(CONFIG).token_hold_idle_s
FORMED_S = 3.0


def formed(n: int = 3, **kw: object) -> Cluster:
    c = Cluster(n, config=CONFIG, **kw)  # type: ignore[arg-type]
    c.run(FORMED_S)
    assert all(c.regular_members(i) == c.roster for i in c.roster)
    return c


def newest_hop(c: Cluster) -> int:
    return max(int(e.tokens.hops.seen) for e in c.engines.values())


def tokens_sent(c: Cluster, since: int) -> list[Token]:
    out = []
    for _, data in c.sent[since:]:
        if peek(data).kind is Kind.TOKEN:
            tk = decode(data).body
            assert isinstance(tk, Token)
            out.append(tk)
    return out


def test_the_hold_is_cut_to_half_a_retransmission_period() -> None:
    assert CONFIG.token_hold_idle_ms / 1000 == HOLD_S
    short = EngineConfig(token_timeout_ms=300, token_hold_idle_ms=100)
    cut_s = IDLE_HOLD_RETRANSMITS * short.token_retransmit_ms / 1000
    assert Timing.of(short).token_hold_idle_s == cut_s < 0.1


def test_an_idle_ring_makes_one_hop_per_hold() -> None:
    c = formed()
    hop0, sent0 = newest_hop(c), len(c.sent)
    c.run(10.0)
    hops = newest_hop(c) - hop0
    # One hop per hold (plus the network's half millisecond per hop).
    assert 10.0 / (HOLD_S + 0.002) <= hops <= 10.0 / HOLD_S + 1
    # Nothing but tokens: no relay, no retransmission, no request.
    assert all(peek(d).kind is Kind.TOKEN for _, d in c.sent[sent0:])
    assert len(c.sent) - sent0 == hops
    for e in c.engines.values():
        assert e.state is State.OPERATIONAL
        assert not [k for k in e.notes if k.startswith((Note.ACCUSE, Note.GATHER + ":t"))]
        assert Note.TOKEN_RELAYED not in e.notes
    # The hold is not load: the reported hold time starts at its release.
    assert all(tk.load.hold_ms < HOLD_S * 1000 / 10 for tk in tokens_sent(c, sent0))


def test_a_message_on_an_idle_ring_is_delivered_within_a_rotation() -> None:
    """From every member, at every offset into a hold: delivered everywhere
    within a rotation and a hop (a wake, the way round to the sender, and
    one more if a hold ended as the wake came), plus the hops that pin the
    sender's token (engine/chain.py)."""
    c = formed(4)
    n = len(c.roster)
    pin = pin_depth(c.engines[1].detector.f, n)
    for k in range(24):
        c.run(0.2 + 0.0137 * k)  # the ring is holding again; vary where
        node = 1 + k % n
        payload = b"m%d" % k
        hop0, t0 = newest_hop(c), c.now
        c.submit(node, payload)
        while not all(payload in c.delivered(i) for i in c.roster):
            c.run(0.0005)
            assert c.now - t0 < HOLD_S, (k, node)
        assert newest_hop(c) - hop0 <= n + 1 + pin
        # The harness steps at least a millisecond per hop: those hops, the
        # wake and the last broadcast.
        assert c.now - t0 <= (n + 3 + pin) * 0.001 + 1e-9
    assert sum(e.notes[Note.WAKE_SENT] for e in c.engines.values()) > 0


def test_a_burst_sends_one_wake() -> None:
    c = formed()
    for k in range(50):
        c.submit(2, b"b%d" % k)
    wakes = [d for s, d in c.sent if s == 2 and isinstance(decode(d).body, TokenRequest)]
    assert len(wakes) <= 1
    c.run(0.05)
    assert all(len(c.delivered(i)) == 50 for i in c.roster)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.integers(min_value=-3, max_value=12), min_size=1, max_size=400),
    st.integers(min_value=1, max_value=5),
)
def test_a_wake_flood_costs_bounded_work(offsets: list[int], copies: int) -> None:
    """A member sends wakes for hops around the newest, each many times, all
    at once: each other member acts on at most one per hop, from a rotation
    behind the newest it saw to a rotation ahead, and answers the rest with
    nothing (the harness's line budget bounds each call)."""
    c = formed(4)
    byz = 4
    ring = c.engines[1].ring
    assert ring is not None
    base = newest_hop(c)
    sent0 = len(c.sent)
    flood = [c.sign(byz, ring, TokenRequest(max(0, base + off))) for off in offsets] * copies
    for data in flood:
        c.broadcast(byz, data)
    c.run(0.01)
    correct = [i for i in c.roster if i != byz]
    for i in correct:
        e = c.engines[i]
        acted = e.notes[Note.WOKEN]
        # A wake names a hop of the last rotation or the next one.
        assert acted <= 2 * len(c.roster) + (newest_hop(c) - base)
        assert acted + e.drops[Drop.TOKEN_REQUEST_REPEAT] + e.drops[Drop.WAKE_IGNORED] <= len(flood)
    # What the correct members sent: the token's way round (the ring
    # no longer holds) and at most one answer per distinct requested hop
    # they had seen.
    out = [d for s, d in c.sent[sent0:] if s != byz]
    tokens = [d for d in out if peek(d).kind is Kind.TOKEN]
    assert len(out) - len(tokens) <= len(set(offsets)) * len(correct)
    assert len(tokens) <= 0.01 / 0.0005 + len(set(offsets)) * len(correct)


def test_nothing_is_evicted_on_an_idle_ring_with_loss() -> None:
    """10% loss on every link, an idle ring for 20 s with a message now and
    then: token losses may restart the ring, but nobody is suspected of a
    slow hold or evicted, and every message is delivered everywhere."""
    rng = random.Random(5)

    def lose(c: Cluster, src: int, dest: int, data: bytes) -> bool:
        return rng.random() < 0.1

    c = Cluster(4, config=CONFIG, lose=lose)
    c.run(FORMED_S)
    for k in range(10):
        c.run(2.0)
        c.submit(1 + k % 4, b"L%d" % k)
    c.run(5.0)
    for i, e in c.engines.items():
        assert not c.evictions(i) and not c.rejected(i)
        assert e.state is State.OPERATIONAL
        assert c.regular_members(i) == c.roster
        assert not [k for k in e.notes if k.startswith(Note.ACCUSE)], dict(e.notes)
        assert sorted(c.delivered(i)) == sorted(b"L%d" % k for k in range(10))
