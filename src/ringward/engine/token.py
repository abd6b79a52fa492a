"""The regular token: observing the chain, and the holder's visit.

Every member sees every token (tokens are broadcast), so:

* the token-loss timer restarts on any token of the ring, and the previous
  holder stops re-sending its token once a later hop appears;
* safe delivery is learned by observation (Totem's two-visit rule, here
  available to every member, not only the holder): if the tokens at hops
  ``h-n`` and ``h`` — one rotation apart, made by the same member — both
  carry an aru of at least ``s``, then every member held ``s`` at its visit
  in between. A member lacking ``s`` would have lowered the aru below ``s``
  at that visit, and only it could raise it again, at its next visit, which
  comes after hop ``h``. The rule is applied only to tokens whose chain
  back to the ring's start this member verified, each transition checked
  (engine/chain.py): a token whose predecessor is unknown can carry a
  raised aru that nobody could check.

The holder's visit (Totem's ``orf_token`` processing, docs/protocol.md):
serve retransmission requests, broadcast new frames within flow control
(window, per-visit maximum, fair share of the backlog, and never more than
half the receive window beyond the ring's aru, which bounds every buffer),
add its own gaps to the request list, lower or reset the aru, account fcc
and backlog, then sign and broadcast the next token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine import accusations, chain, delivery, faults, flow, versions
from ringward.engine.config import MS_PER_S
from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
from ringward.engine.ringstore import HeldToken, RingStore
from ringward.engine.tokenstate import Held, Relay, Sent, TokenState, Visit
from ringward.wire import Frame, FrameRef, LoadReport, RingId, Token, TokenRequest, limits

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "on_token",
    "on_token_request",
    "relay",
    "release_held",
    "retransmit",
    "start_ring",
]

U32_MAX = (1 << 32) - 1


def on_token(engine: Engine, frame: Frame, raw: bytes) -> None:
    tk = frame.body
    assert isinstance(tk, Token)
    cur = engine.active()
    if cur is None or frame.ring != cur.ring:
        old = engine.store
        if old is not None and frame.ring == old.ring and frame.sender in engine.members:
            # A late token of the installed ring: still vouches for frames
            # that recovery may need, if it is the version this node's
            # chain names (engine/versions.py).
            if versions.admit(engine, old, frame, raw, recovered=False):
                delivery.confirm(engine, old, frame, raw)
                delivery.deliver_ready(engine)
            faults.late_token(engine, frame)
            engine.drops[Drop.STALE_TOKEN] += 1
        elif engine.pending is not None and frame.ring == engine.pending.ring:
            engine.drops[Drop.STALE_TOKEN] += 1
        else:
            engine.foreign(frame)
        return
    _, members, store = cur
    if frame.sender not in members or tk.succ not in members:
        engine.drops[Drop.TOKEN_NOT_MEMBER] += 1
        return
    if not faults.observe_token(engine, frame, raw, members, store) or engine.active() != cur:
        return  # it convicted its maker, or a verdict restarted membership
    if not chain.add(engine, frame, raw, members, store) or engine.active() != cur:
        return
    ts = engine.tokens
    delivery.confirm(engine, store, frame, raw, ts.seq_at.get(tk.hop - 1))
    if tk.frames:
        delivery.deliver_ready(engine)
        if engine.active() != cur:
            return  # a recovered old token proved an equivocation
    _track_hops(engine, ts, tk.hop, members)
    if tk.hop > ts.hop_seen:
        _observe(engine, ts, tk, members, store)
        _arm_relay(engine, ts, frame, raw)
    _take_turn(engine, ts, frame, raw)


def _take_turn(engine: Engine, ts: TokenState, frame: Frame, raw: bytes) -> None:
    """Visit a token passed to us, or one held until its link closed."""
    tk = frame.body
    assert isinstance(tk, Token)
    if tk.succ == engine.node_id and tk.hop > ts.hop_done and ts.held is None:
        ts.arrived = engine.now
        if engine.state is State.RECOVERY and not chain.linked(ts, tk.hop):
            # Recovery ends on what the token says about every member: a
            # token not linked yet is held until it is (engine/chain.py).
            ts.held, ts.held_for_link = Held(frame, raw), True
        else:
            visit(engine, frame, raw)
    elif ts.held_for_link and ts.held is not None and _held_linked(ts):
        ts.held_for_link = False
        # Waiting for others to close the link is not load: the hold we
        # report (the overload signal) starts now.
        ts.arrived = engine.now
        release_held(engine)


def _held_linked(ts: TokenState) -> bool:
    assert ts.held is not None
    tk = ts.held.frame.body
    assert isinstance(tk, Token)
    return chain.linked(ts, tk.hop)


def _observe(
    engine: Engine, ts: TokenState, tk: Token, members: tuple[int, ...], store: RingStore
) -> None:
    _record(ts, tk.hop, tk.seq, len(members))
    _watch_requests(ts, tk, len(members))
    ts.last_succ, ts.last_seen_t = tk.succ, engine.now
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    if ts.last_sent is not None and tk.hop > ts.last_sent.hop:
        ts.last_sent = None
        engine.cancel_timer("token_rtx")
    if engine.state is State.RECOVERY:
        engine.cancel_timer("commit_rtx")  # the new ring runs: the commit made it


# Token retransmission periods after which a member that saw hop h, and no
# later hop, sends its copy of h to h's successor. Before the holder's own
# retransmission: a holder starving its successor costs a rotation this
# much (at 2 periods, a 10-node ring with such a member and a slow holder
# spent 8 s in one recovery); far below the slow-hold time, so the
# successor is not suspected of a slow visit. A correct ring's next hop
# comes within milliseconds, so relays happen only on loss or a slow
# successor (duplicates it ignores).
RELAY_RETRANSMITS = 0.5
# A holder with frames still queued holds the token this long (0.1 ms)
# before passing it on: the next visit sends them.
BUSY_HOLD_S = 0.1 / MS_PER_S


def _arm_relay(engine: Engine, ts: TokenState, frame: Frame, raw: bytes) -> None:
    """A holder that sends its token to everyone but its successor (or a
    network that drops it on that one link) would otherwise get the correct
    successor blamed for the token loss; every member that saw the token
    relays it once if the next hop is late."""
    tk = frame.body
    assert isinstance(tk, Token)
    if tk.succ in (engine.node_id, frame.sender):
        ts.relay = None
        engine.cancel_timer("relay")
        return
    ts.relay = Relay(tk.hop, tk.succ, raw)
    engine.set_timer("relay", RELAY_RETRANSMITS * engine.timing.token_retransmit_s)


def relay(engine: Engine) -> None:
    """The relay timer: the next hop is late; pass our copy on, once."""
    ts = engine.tokens
    r, ts.relay = ts.relay, None
    if r is not None and ts.hop_seen == r.hop and engine.active() is not None:
        engine.send(r.dest, r.raw)
        engine.notes[Note.TOKEN_RELAYED] += 1


# Missing hops asked for at once: bounds the requests one token can cause.
ASK_MAX = 8
# Attempts per missing hop. A token that lists frames someone still lacks is
# kept by its maker; one it no longer has vouches only for frames every
# member already confirmed (they are safe), so giving up on it loses nothing.
ASK_TRIES = 5
# Attempts that go to the missing token's maker alone before the ask goes to
# everyone (as chain.UNICAST_ASKS for a missing link).
UNICAST_TOKEN_ASKS = 1
# Hops tracked behind the newest: a memory bound, far above what loss needs.
HOPS_TRACKED_PER_NODE = 64
# Missing hops still being asked for once they left that window.
ASK_KEPT = 64


def _track_hops(engine: Engine, ts: TokenState, hop: int, members: tuple[int, ...]) -> None:
    """Every member must see every token (they vouch for frames): a gap in
    the hops seen is asked for from the member that made the missing token.
    A ring whose aru is held down spins fast, so hops leave the tracked
    window within a few retry periods: a missing hop that leaves it keeps
    its own entry in ``asked`` until its tries are spent (the stall this
    prevents: a token lost twice, then never asked for again, left its
    frames unconfirmed for good; soak seed 302224)."""
    n = len(members)
    ts.seen_hops.add(hop)
    ts.asked.pop(hop, None)
    if hop - ts.hop_contig > HOPS_TRACKED_PER_NODE * n:
        floor = hop - HOPS_TRACKED_PER_NODE * n
        # Bounded by what is held (seen hops, asks), never by the gap: a
        # hop is a claim (engine/validate.py bounds it too).
        stop = min(floor, ts.hop_contig + len(ts.seen_hops) + ASK_KEPT)
        for missing in range(ts.hop_contig + 1, stop + 1):
            if len(ts.asked) >= ASK_KEPT:
                break
            if missing not in ts.seen_hops and missing not in ts.asked:
                ts.asked[missing] = (-1e9, 0)
        ts.hop_contig = floor
    while ts.hop_contig + 1 in ts.seen_hops:
        ts.hop_contig += 1
    ts.seen_hops = {h for h in ts.seen_hops if h > ts.hop_contig}
    retry = engine.timing.token_retransmit_s
    asked = 0
    window = [h for h in range(ts.hop_contig + 1, hop) if h not in ts.seen_hops]
    for missing in sorted({*window, *ts.asked}):
        if asked >= ASK_MAX or missing >= hop:
            break
        producer = members[(missing - 1) % n]
        last, tries = ts.asked.get(missing, (-retry, 0))
        if tries >= ASK_TRIES:
            ts.seen_hops.add(missing)  # given up: let the prefix move on
            ts.asked.pop(missing, None)
        elif producer != engine.node_id and engine.now - last >= retry:
            ts.asked[missing] = (engine.now, tries + 1)
            asked += 1
            cur = engine.active()
            assert cur is not None
            # First its maker; then everyone (any member serves any token
            # it saw): a maker that sends its tokens to all but us would
            # leave our chain a link behind per rotation, its stall
            # restarting the ring and blamed on us (churn) until we were
            # evicted (tests/engine/test_withheld_tokens.py).
            dest = producer if tries < UNICAST_TOKEN_ASKS else None
            engine.emit_signed(cur.ring, TokenRequest(missing), dest)
    ts.seen_hops = {h for h in ts.seen_hops if h > ts.hop_contig}


# Requests answered per requester and hop once per this many token
# retransmission periods: a correct member re-asks at most once a period
# (chain._ask, _track_hops), so a replayed request gets no second answer.
ANSWER_PERIODS = 0.5
# Answers remembered for that (a bound; the oldest is forgotten first).
ANSWERS_KEPT = 256


def on_token_request(engine: Engine, frame: Frame) -> None:
    """Send a member a token it missed: one that listed frames (kept while
    they are), or one of the last two rotations."""
    req = frame.body
    assert isinstance(req, TokenRequest)
    key = (frame.sender, frame.ring, req.hop)
    answered = engine.tokens.answered
    last = answered.get(key)
    if last is not None and engine.now - last < ANSWER_PERIODS * engine.timing.token_retransmit_s:
        engine.drops[Drop.TOKEN_REQUEST_REPEAT] += 1
        return
    answered.pop(key, None)
    if len(answered) >= ANSWERS_KEPT:
        del answered[next(iter(answered))]
    answered[key] = engine.now
    for store in (engine.new_store, engine.store):
        if store is not None and store.ring == frame.ring:
            # Any token that listed frames, whoever made it, for as long as
            # its frames are held: a member that missed it cannot count
            # them as received without it, and the maker's answers may be
            # lost (10% loss: three asks all failed, the asker's aru stuck).
            held = store.tokens.get(req.hop)
            if held is not None:
                engine.send(frame.sender, held.raw)
                return
            break
    cur = engine.active()
    ts = engine.tokens
    seen = ts.raw_at.get(req.hop) or ts.linked_to.get(req.hop)
    if cur is not None and cur.ring == frame.ring and seen is not None:
        # Any token we saw, whoever made it: it is signed by its maker, and
        # a member that saw another version for this hop needs ours to prove
        # the equivocation.
        engine.send(frame.sender, seen[0])


def _record(ts: TokenState, hop: int, seq: int, n: int) -> None:
    ts.hop_seen = max(ts.hop_seen, hop)
    ts.seq_at[hop] = seq
    for old in [h for h in ts.seq_at if h < hop - 2 * n]:
        del ts.seq_at[old]


def _seq_one_rotation_ago(ts: TokenState, hop: int, n: int) -> int | None:
    known = [h for h in ts.seq_at if h <= hop - n + 1]
    return ts.seq_at[max(known)] if known else None


def start_ring(engine: Engine) -> None:
    """The representative starts the new ring's token (after the commit
    token's second rotation): a visit of a virtual hop-0 token."""
    cur = engine.active()
    assert cur is not None
    ring, _, _ = cur
    zero = Token(0, engine.node_id, 0, 0, 0, (), 0, 0, (), bytes(32), LoadReport(0, 0, 0, 0))
    frame = Frame(engine.cluster_id, engine.node_id, ring, zero, bytes(limits.SIGNATURE_BYTES))
    engine.tokens.arrived = engine.now  # the visit's hold time starts now
    visit(engine, frame, b"")


def visit(engine: Engine, frame: Frame, raw: bytes) -> None:
    """Process the token as its holder and pass it on."""
    tk = frame.body
    assert isinstance(tk, Token)
    cur = engine.active()
    assert cur is not None
    ring, members, store = cur
    cfg, ts, me = engine.config, engine.tokens, engine.node_id
    recovering = engine.state is State.RECOVERY
    queue = engine.recq if recovering else engine.sendq
    assert queue is not None
    sent, rtr_left = _serve_retransmissions(engine, tk, store, len(members))
    # Only a linked token's aru is trusted (engine/chain.py).
    done = recovering and chain.linked(ts, tk.hop) and _recovery_complete(ts, tk, store, len(queue))
    # The visit that completes recovery sends nothing new, so every other
    # member sees the same quiet rotation and completes on its next visit.
    budget = 0 if done else flow.budget(engine, tk, store, queue, sent, len(members))
    seq, refs = tk.seq, []
    while budget > 0:
        entries = queue.next_batch()
        if not entries:
            break
        seq += 1
        out = delivery.make_data(engine, ring, seq, entries)
        refs.append(FrameRef(seq, engine.digest(out)))
        budget -= 1
    new = len(refs)
    back = _seq_one_rotation_ago(ts, tk.hop, len(members))
    wanted = store.missing(back if back is not None else 0, cfg.rtr_entries_max)
    rtr = tuple(sorted(set(rtr_left) | set(wanted)))[: cfg.rtr_entries_max]
    aru, aru_id = tk.aru, tk.aru_id
    if store.aru < aru or aru_id in (me, 0):
        aru, aru_id = store.aru, (0 if store.aru >= seq else me)
    if _aru_stuck(engine, ts, aru, aru_id, seq):
        return
    fcc = flow.others_fcc(ts, tk, cfg.max_messages, len(members)) + sent + new
    ts.my_fcc = sent + new
    mine = queue.frames_pending
    backlog = min(U32_MAX, flow.others_backlog(ts, tk, cfg.max_messages, len(members)) + mine)
    ts.my_backlog = mine
    idle = sent + new == 0 and not rtr and aru == seq and not engine.sendq.frames_pending
    ts.idle_visits = ts.idle_visits + 1 if idle and not recovering else 0
    if _hold(engine, ts, frame, raw):
        return
    nxt = Token(
        hop=tk.hop + 1,
        succ=members[(members.index(me) + 1) % len(members)],
        seq=seq,
        aru=aru,
        aru_id=aru_id,
        rtr=rtr,
        fcc=min(U32_MAX, fcc),
        backlog=backlog,
        frames=tuple(refs),
        prev=engine.digest(raw),
        load=_load(engine, store, ts),
    )
    _keep_link(engine, ts, tk.hop, raw)
    _forward(engine, ring, nxt, members)
    if engine.active() != cur:
        return  # our own report convicted us, or a check restarted membership
    ts.prev_visit2, ts.prev_visit = ts.prev_visit, Visit(seq, backlog, aru)
    if done:
        delivery.finish(engine)
    else:
        delivery.deliver_ready(engine)


# How long (token timeouts) and how many of the tokens our own tokens
# linked to we keep to answer link asks: asks come for 3 retransmission
# periods (chain.LINK_ASKS, about 0.7 token timeouts); the two rotations of
# raw_at pass in milliseconds on a busy ring, and a successor that could not
# show the version it linked to was accused (broken_link) for its
# predecessor's equivocation.
LINKED_TO_TOKEN_TIMEOUTS = 2
LINKED_TO_MAX = 256


def _keep_link(engine: Engine, ts: TokenState, hop: int, raw: bytes) -> None:
    if not raw:
        return  # the virtual hop 0 of a ring we start
    keep = ts.linked_to
    keep[hop] = (raw, engine.now)
    cutoff = engine.now - LINKED_TO_TOKEN_TIMEOUTS * engine.timing.token_timeout_s
    while keep and (len(keep) > LINKED_TO_MAX or next(iter(keep.values()))[1] < cutoff):
        del keep[next(iter(keep))]


# Rotations a request must have stayed in the token chain before any
# holder, not only the frame's originator, serves it.
RTR_FALLBACK_VISITS = 3
# The aru held by the same other member for this many of our visits and
# token timeouts before each aru_stuck suspicion: ten times the frame
# fallback (30% loss: each rotation past it, n-1 copies), and past the point
# where a member that misses a confirming token restarts the ring itself
# (chain.STALL_TOKEN_TIMEOUTS).
ARU_STUCK_VISITS = 10 * RTR_FALLBACK_VISITS
ARU_STUCK_TOKEN_TIMEOUTS = 3


def _watch_requests(ts: TokenState, tk: Token, n: int) -> None:
    """Every member sees every token's requests: remember since which hop
    each seq has been asked for, without a rotation's gap."""
    for seq in tk.rtr:
        first, _ = ts.rtr_watch.get(seq, (tk.hop, tk.hop))
        ts.rtr_watch[seq] = (first, tk.hop)
    for seq in [s for s, (_, last) in ts.rtr_watch.items() if last < tk.hop - n]:
        del ts.rtr_watch[seq]


def _serve_retransmissions(
    engine: Engine, tk: Token, store: RingStore, n: int
) -> tuple[int, list[int]]:
    """Serve retransmission requests. The originator of a frame serves the
    requests in the token it holds; any other member serves a frame once
    requests for it have stood in the token chain for RTR_FALLBACK_VISITS
    rotations - whether or not they reach it: a member that erases requests
    from the tokens it passes on, or alters what it retransmits, cannot keep
    a requester from a clean copy (an altered copy fails the digest check).
    The price is a few rotations of latency when the originator's own copy
    is lost."""
    ts = engine.tokens
    sent, left = 0, []
    late = tk.hop - RTR_FALLBACK_VISITS * n
    stale = [s for s, (first, _) in ts.rtr_watch.items() if first <= late and s not in tk.rtr]
    for seq in (*tk.rtr, *sorted(stale)):
        item = store.frames.get(seq)
        mine = item is not None and item.frame.sender == engine.node_id
        watched = ts.rtr_watch.get(seq, (tk.hop, tk.hop))[0] <= late
        if (
            item is not None
            and sent < engine.config.max_messages
            and ((mine and seq in tk.rtr) or watched)
        ):
            engine.send(None, item.raw)
            sent += 1
            ts.rtr_watch.pop(seq, None)
        elif seq in tk.rtr and seq > store.safe_upto:  # a request for a safe frame is stale
            left.append(seq)
    return sent, left


def _recovery_complete(ts: TokenState, tk: Token, store: RingStore, pending: int) -> bool:
    """All recovery frames are out and every member has all of them: we
    have nothing pending, and over our last two rotations the seq did not
    move and the aru equalled the seq (the two-visit rule of the module
    docstring). No claim is needed: in the second quiet rotation every
    frame is safe everywhere, so no correct member spends its visit on
    retransmissions, and after a rotation without new frames the window
    lets one frame out whatever fcc claims (flow.budget); a correct member
    with a frame pending would have moved the seq. The backlog field is not
    read: it is a claim, and a member claiming a queue it never sends would
    keep recovery from completing."""
    pv, pv2 = ts.prev_visit, ts.prev_visit2
    return (
        pending == 0
        and pv is not None
        and pv2 is not None
        and pv2.aru == pv2.seq == pv.aru == pv.seq == tk.seq
        and tk.aru == tk.seq
        and store.aru >= tk.seq
    )


def _aru_stuck(engine: Engine, ts: TokenState, aru: int, aru_id: int, seq: int) -> bool:
    """Totem's fail_recv_const: the same member holds the aru down for too
    many rotations while the ring moves on -> reconfigure without it. Long
    before that, every ARU_STUCK_TOKEN_TIMEOUTS (and at least
    ARU_STUCK_VISITS visits) it is suspected: a
    correct member lacking a frame gets it within a few rotations (any
    holder serves a request standing RTR_FALLBACK_VISITS rotations), so
    only a member that cannot receive at all, or claims it cannot, holds
    the aru that long; failing it alone let it merge straight back."""
    pv = ts.prev_visit
    if pv is not None and aru == pv.aru and aru < seq and aru_id not in (0, engine.node_id):
        ts.aru_stuck += 1
        if ts.aru_stuck == 1:
            ts.aru_stuck_at = engine.now
        held_s = engine.now - ts.aru_stuck_at
        if (
            ts.aru_stuck >= ARU_STUCK_VISITS
            and held_s >= ARU_STUCK_TOKEN_TIMEOUTS * engine.timing.token_timeout_s
            and engine.config.fault_detector
        ):
            ts.aru_stuck_at = engine.now  # again after as long
            accusations.suspect(engine, aru_id, "aru_stuck")
    else:
        ts.aru_stuck = 0
    if ts.aru_stuck < engine.config.fail_recv_const or engine.active() is None:
        return engine.active() is None
    engine.enter_gather(engine.now, reason="fail_recv")
    if engine.gather is not None:
        engine.gather.fail.add(aru_id)
        engine.send_join()
    return True


def _hold(engine: Engine, ts: TokenState, frame: Frame, raw: bytes) -> bool:
    """An idle ring slows down: keep the token a while (a submit releases it)."""
    cfg = engine.config
    if ts.idle_visits < cfg.seqno_unchanged_const or cfg.token_hold_idle_ms == 0:
        return False
    ts.held = Held(frame, raw)
    engine.set_timer("token_hold", engine.timing.token_hold_idle_s)
    return True


def release_held(engine: Engine) -> None:
    """Process a held token now (timer, or new work arrived)."""
    ts = engine.tokens
    held, ts.held = ts.held, None
    engine.cancel_timer("token_hold")
    if held is None or engine.active() is None:
        return
    ts.idle_visits = 0
    visit(engine, *held)


def _forward(engine: Engine, ring: RingId, nxt: Token, members: tuple[int, ...]) -> None:
    ts = engine.tokens
    mine, out = engine.sign_frame(ring, nxt)
    engine.send(None, out)
    assert isinstance(mine.body, Token)
    nxt = mine.body  # what was signed is what we stand by
    faults.own_token(engine, mine, out, members)
    cur = engine.active()
    if cur is None or cur.ring != ring:
        return  # our own load report convicted us: we stand down
    ts.last_succ, ts.last_seen_t = nxt.succ, engine.now
    if nxt.frames and cur is not None and len(cur.store.tokens) < cur.store.window:
        top = max(ref.seq for ref in nxt.frames)
        cur.store.tokens[nxt.hop] = HeldToken(out, top, engine.node_id)
    ts.seen_hops.add(nxt.hop)
    ts.hop_done = nxt.hop - 1
    _record(ts, nxt.hop, nxt.seq, len(members))
    ts.last_sent = Sent(nxt.hop, out)
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    cur = engine.active()
    if cur is not None and not chain.add(engine, mine, out, members, cur.store):
        return
    if nxt.succ == engine.node_id:
        # A ring of one: the token comes straight back. Take the next visit
        # from a timer so time advances between visits.
        ts.held = Held(mine, out)
        ts.arrived = engine.now
        busy = engine.sendq.frames_pending or engine.state is State.RECOVERY
        engine.set_timer("token_hold", BUSY_HOLD_S if busy else engine.timing.token_hold_idle_s)
    else:
        engine.set_timer("token_rtx", engine.timing.token_retransmit_s)


def retransmit(engine: Engine) -> None:
    """No later hop seen since we passed the token: send it again."""
    ts = engine.tokens
    if ts.last_sent is None or engine.active() is None:
        return
    engine.send(None, ts.last_sent.raw)
    engine.set_timer("token_rtx", engine.timing.token_retransmit_s)


def _load(engine: Engine, store: RingStore, ts: TokenState) -> LoadReport:
    cfg = engine.config
    # From the token's arrival at the node (the driver's receive queue
    # included) to its forwarding; or, if longer, the longest any datagram
    # waited in the receive queue since our previous token.
    held_s = max(engine.now - ts.arrived + engine.rx_wait_s, engine.rx_wait_peak_s)
    engine.rx_wait_peak_s = 0.0
    held_ms = int(held_s * MS_PER_S)
    return LoadReport(
        backlog=min(U32_MAX, len(engine.sendq)),
        rx_queue=min(U32_MAX, engine.rx_queue),
        hold_ms=min(U32_MAX, max(0, held_ms)),
        memory_permille=min(0xFFFF, len(store.frames) * 1000 // cfg.receive_window_frames_max),
    )
