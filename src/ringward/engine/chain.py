"""The verified token chain: which tokens of the ring this member trusts
for safe delivery.

Every token names its predecessor by digest (``prev``). A token's aru is
used - by the two-visit rule that marks frames safe, and by the check that
ends recovery - only once every hop of the ring up to it is *linked* here:
received, its ``prev`` equal to the digest of the token this member holds
for the hop before, and (fault detector on) its transition from that
predecessor checked against Totem's rules (``evidence.transition_rule``).

Why: the transition rules can only be applied to a token whose predecessor
is known. A Byzantine holder that wrote random bytes in ``prev`` made its
raised aru uncheckable, and a correct successor that had missed the real
predecessor carried that aru on in a well-linked token; the two-visit rule
then marked frames safe that a member lacked (simulator behaviour
``break-link``; before this module it broke safe delivery and virtual
synchrony on 4 nodes at 5% loss).

A token's frames are confirmed (counted in the aru, delivered) only once
the chain *pins* its version: a correct maker names in ``prev`` exactly one
version of the hop before its own, so a maker that signs two versions of
its hop and hands each to other members cannot have both followed. A
linked token at hop ``h`` is pinned once the chain is linked to
``h + p`` (``p = versions.pin_depth``: ``f``, at least one; among ``p``
makers after a faulty one, one is correct - with ``p = 1``, two colluding
neighbours could each sign a second version, the later naming the
earlier). The holder counts its own next token among them as it signs it
(with ``p = 1`` its aru counts the frames of the token it visits at once).
The same ``p`` tokens are what lets every other member pin that version
in recovery, if the ring breaks first (engine/versions.py): a member's own
token alone is not a pin the others could check. Before this, the first signed digest for
a seq was confirmed at once, and a member handed a second version
delivered another message at that seq than the rest of the ring (issue
16, finding 5; tests/engine/test_recovered_versions.py). A member whose
version the next token does not name never pins it: it asks for the named
one (below), which proves the equivocation. Tokens not pinned when the
ring is left are settled by recovery (engine/versions.py).

A link that does not close is fetched (TOKEN_REQUEST): a missing token from
its producer, then from everyone (any member serves any token it saw); for
a ``prev`` that names another version of the hop before, that version, from
the token's maker, then from everyone - a correct maker has it (it keeps
what its last ``LINKED_TO_MAX`` tokens linked to), and getting it proves the
predecessor's maker equivocated. A maker whose link nobody can close after
``LINK_ASKS`` asks is suspected (``broken_link``: every correct member sees
the same broadcast token, so f+1 of them accuse it), unless this member
lags further behind the ring than half of what the maker keeps. A chain
stuck for ``STALL_TOKEN_TIMEOUTS`` token timeouts while tokens keep coming
restarts membership: this member can no longer deliver safely in this ring,
and its buffers (freed only below the safe seq) would grow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine import delivery, evidence, faults, versions
from ringward.engine.reasons import Note
from ringward.engine.tokenstate import LINKED_TO_MAX, LinkAsk, Links, Unlinked, Unpinned
from ringward.wire import Frame, Token, TokenRequest

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.ringstore import RingStore

__all__ = ["add", "learn_safe", "linked", "note_version", "pin_visited", "poll"]

# Tokens held while waiting for a link: a memory bound (a token beyond it is
# fetched again once the chain reaches it).
UNLINKED_MAX = 1024
# Other versions kept because the next token names them (note_version): one
# per equivocation, and each convicts its maker.
FETCHED_MAX = 16
# Asks for one missing link, and how many go to one member before the ask is
# broadcast to all.
# Three asks take about 3 x token_retransmit_ms = 0.6 token timeouts: the
# maker of a broken link is accused before the ring's token timeout, so a
# successor holding its token in recovery is not blamed for the loss.
LINK_ASKS = 3
UNICAST_ASKS = 1
# Token timeouts without a new link, while tokens arrive, before the ring is
# given up.
STALL_TOKEN_TIMEOUTS = 2
# A link ask this fraction of the retransmit period after the last one is
# due (float time: a poll a hair early asks rather than skips a period).
ASK_PERIOD_SLACK = 0.9


def linked(ts: Links, hop: int) -> bool:
    """Whether every hop of the ring up to ``hop`` is linked here."""
    return ts.covers(hop)


def add(
    engine: Engine, frame: Frame, raw: bytes, members: tuple[int, ...], store: RingStore
) -> bool:
    """A verified token of our ring (ours included): link what can be
    linked, confirm what is pinned. False when membership restarted (a
    transition convicted its maker, or the chain stalled)."""
    ts = engine.tokens.links
    tk = frame.body
    assert isinstance(tk, Token)
    store.vouch(frame.sender, tk.aru, raw)
    if tk.hop > ts.linked and tk.hop not in ts.unlinked and len(ts.unlinked) < UNLINKED_MAX:
        ts.unlinked[tk.hop] = Unlinked(engine.digest(raw), frame, raw)
    return _advance(engine, members, store)


def note_version(engine: Engine, frame: Frame, raw: bytes) -> None:
    """A verified token of our ring, before the fault detector sees it: if
    it is another version than ours of a hop, and the token after it that
    waits for its link names it, keep it (``Links.fetched``): the others
    follow it, and recovery confirms it here too (engine/versions.py)."""
    ts = engine.tokens.links
    tk = frame.body
    assert isinstance(tk, Token)
    nxt = ts.unlinked.get(tk.hop + 1)
    ours = ts.unlinked.get(tk.hop)
    if (
        nxt is None
        or tk.hop in ts.fetched
        or len(ts.fetched) >= FETCHED_MAX
        or (ours is None and tk.hop > ts.linked)
    ):
        return
    assert isinstance(nxt.frame.body, Token)
    digest = engine.digest(raw)
    if nxt.frame.body.prev == digest and (ours is None or ours.digest != digest):
        ts.fetched[tk.hop] = Unlinked(digest, frame, raw)


def pin_visited(engine: Engine, hop: int, n: int, store: RingStore) -> bool:
    """We are about to sign the token after ``hop``, naming the version we
    visit: if the chain is linked that far, our token is the last of the
    ``p`` that pin hop ``hop + 1 - p``, pinned now (with ``p`` = 1, the
    token we visit: our aru counts its frames). True when something was
    pinned."""
    if not linked(engine.tokens.links, hop):
        return False
    return _pin(engine, hop + 1 - versions.pin_depth(engine.detector.f, n), store)


def _pin(engine: Engine, through: int, store: RingStore) -> bool:
    """Confirm the frames of the linked tokens up to hop ``through``."""
    ts = engine.tokens.links
    done = False
    for hop in sorted(h for h in ts.unpinned if h <= through):
        frame, raw, prev_seq = ts.unpinned.pop(hop)
        delivery.confirm(engine, store, frame, raw, prev_seq)
        done = True
    ts.pinned = max(ts.pinned, min(through, ts.linked))
    return done


def _advance(engine: Engine, members: tuple[int, ...], store: RingStore) -> bool:
    ts = engine.tokens.links
    n = len(members)
    depth = versions.pin_depth(engine.detector.f, n)
    moved = safe = pinned = False
    while (entry := ts.unlinked.get(ts.linked + 1)) is not None:
        digest, frame, raw = entry
        tk = frame.body
        assert isinstance(tk, Token)
        want = ts.link_digest if ts.linked > 0 else engine.digest(b"")
        if tk.prev != want:
            break
        prev = ts.link_frame
        if prev is not None and frame.sender != engine.node_id:
            before = engine.state, engine.ring
            faults.check_transition(engine, prev, frame)
            if (engine.state, engine.ring) != before:
                return False  # convicted: membership restarted
        del ts.unlinked[tk.hop]
        prev_seq = None
        if prev is not None:
            assert isinstance(prev.body, Token)
            prev_seq = prev.body.seq
        ts.unpinned[tk.hop] = Unpinned(frame, raw, prev_seq)
        ts.linked, ts.link_digest, ts.link_frame = tk.hop, digest, frame
        ts.aru_at[tk.hop] = tk.aru
        ts.aru_at.pop(tk.hop - 2 * n, None)
        pinned = _pin(engine, tk.hop - depth, store) or pinned
        safe = learn_safe(ts, tk.hop, n, store) or safe
        moved = True
    if safe or pinned:
        cur = engine.active()
        delivery.deliver_ready(engine)
        if engine.active() != cur:
            return False  # a recovered old token proved an equivocation
    if moved or ts.link_wait is None:
        ts.link_wait = engine.now
    return poll(engine, members, store)


def poll(engine: Engine, members: tuple[int, ...], store: RingStore) -> bool:
    """While a link is missing: fetch it, or give the ring up once the
    chain stalled. False when membership restarted."""
    ts = engine.tokens.links
    if not ts.unlinked:
        ts.link_wait = None
        engine.cancel_timer("link")
        return True
    # Asks and the stall check go on while no token comes (recovery holds
    # an unlinked token, so the ring may be silent). Armed once per period,
    # not pushed back by every datagram that polls us meanwhile: that
    # skipped asks, which then went out every other period, and the token
    # timeout restarted the round before the blame, every round (Byzantine
    # soak seed 1115: a break-link member never evicted).
    if engine.timer_due("link") is None:
        engine.set_timer("link", engine.timing.token_retransmit_s)
    if ts.link_wait is None:
        ts.link_wait = engine.now
    if engine.now - ts.link_wait > STALL_TOKEN_TIMEOUTS * engine.timing.token_timeout_s:
        engine.notes[Note.CHAIN_STALLED] += 1
        engine.enter_gather(engine.now, reason="chain")
        return False
    _ask(engine, members, store)
    return True


def _ask(engine: Engine, members: tuple[int, ...], store: RingStore) -> None:
    """Fetch what the next link needs (module docstring)."""
    ts = engine.tokens.links
    nxt = ts.linked + 1
    entry = ts.unlinked.get(nxt)
    if entry is None:
        hop, first = nxt, evidence.producer(members, nxt)  # the token itself
    else:
        hop, first = ts.linked, entry[1].sender  # the version it linked to
    asked_hop, last, tries = ts.link_ask.hop, ts.link_ask.at, ts.link_ask.tries
    if asked_hop != hop:
        last, tries = -1e9, 0
    # Paced by the link timer (poll).
    if engine.now - last < ASK_PERIOD_SLACK * engine.timing.token_retransmit_s:
        return
    if tries >= LINK_ASKS and entry is not None:
        if not ts.link_blamed:
            ts.link_blamed = True
            if engine.tokens.hops.seen - hop < (LINKED_TO_MAX // 2) * len(members):
                faults.link_broken(engine, entry[1].sender)
            # else: we lag further behind the ring than its maker keeps what
            # its tokens linked to; our lag, not its broken link.
        return
    # A missing token is asked for every period until it comes or the chain
    # stalls (any member holding it answers: it may be lost on the way).
    ts.link_ask = LinkAsk(hop, engine.now, tries + 1)
    dest = first if tries < UNICAST_ASKS and first != engine.node_id else None
    engine.emit_signed(store.ring, TokenRequest(hop), dest)


def learn_safe(ts: Links, hop: int, n: int, store: RingStore) -> bool:
    """Apply the two-visit rule (engine/token.py's docstring) to the linked
    token at ``hop``: both ends, and every hop between, are linked."""
    before = ts.aru_at.get(hop - n)
    if before is None:
        return False
    old = store.safe_upto
    store.mark_safe(min(ts.aru_at[hop], before))
    return store.safe_upto > old
