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

from ringward.engine import accusations, chain, delivery, evidence, faults, flow, idle, versions
from ringward.engine.config import MS_PER_S
from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
from ringward.engine.ringstore import HeldToken, RingStore
from ringward.engine.tokenstate import Relay, TokenState, Visit
from ringward.wire import Frame, FrameRef, LoadReport, RingId, Token, TokenRequest, limits

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "on_submit",
    "on_token",
    "on_token_request",
    "relay",
    "release_held",
    "retransmit",
    "start_ring",
]

U32_MAX = faults.U32_MAX  # one definition; recovery reads it here


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
            pinned = versions.admit(engine, old, frame, raw, recovered=False)
            for version, version_raw in pinned:
                delivery.confirm(engine, old, version, version_raw)
            if pinned:
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
    chain.note_version(engine, frame, raw)
    if not faults.observe_token(engine, frame, raw, members, store) or engine.active() != cur:
        return  # it convicted its maker, or a verdict restarted membership
    # Its frames are confirmed once the chain pins it (engine/chain.py).
    if not chain.add(engine, frame, raw, members, store) or engine.active() != cur:
        return
    ts = engine.tokens
    _track_hops(engine, ts, tk.hop, members)
    if tk.hop > ts.hops.seen:
        _observe(engine, ts, tk, members)
        _arm_relay(engine, ts, frame, raw)
    _take_turn(engine, ts, frame, raw)


def _take_turn(engine: Engine, ts: TokenState, frame: Frame, raw: bytes) -> None:
    """Visit a token passed to us, or one held until its link closed."""
    tk = frame.body
    assert isinstance(tk, Token)
    me = ts.holder
    if tk.succ == engine.node_id and tk.hop > ts.hops.done and me.held is None:
        me.arrive(engine.now)
        if engine.state is State.RECOVERY and not chain.linked(ts.links, tk.hop):
            # Recovery ends on what the token says about every member: a
            # token not linked yet is held until it is (engine/chain.py).
            me.hold(frame, raw, for_link=True)
        else:
            visit(engine, frame, raw)
    elif me.held_for_link and me.held is not None and _held_linked(ts):
        me.link_closed()
        # Waiting for others to close the link is not load: the hold we
        # report (the overload signal) starts now.
        me.arrive(engine.now)
        release_held(engine)


def _held_linked(ts: TokenState) -> bool:
    assert ts.holder.held is not None
    tk = ts.holder.held.frame.body
    assert isinstance(tk, Token)
    return chain.linked(ts.links, tk.hop)


def _observe(engine: Engine, ts: TokenState, tk: Token, members: tuple[int, ...]) -> None:
    ts.hops.record(tk.hop, tk.seq, len(members))
    ts.holder.saw(idle.quiet_token(tk))
    watch = engine.detector.tokens
    watch.watch_requests(tk, len(members))
    watch.passed(tk.succ, engine.now)
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    if ts.holder.superseded(tk.hop):
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
    relays it once if the next hop is late. Once a maker's successor has
    needed that, the maker's next tokens go to it at once for a while
    (tokenstate.Holder.starving): a starving maker, which nothing can prove
    (a lossy link looks the same), would otherwise slow every rotation by
    the relay's wait."""
    tk = frame.body
    assert isinstance(tk, Token)
    if tk.succ in (engine.node_id, frame.sender):
        ts.holder.arm_relay(None)
        engine.cancel_timer("relay")
        return
    ts.holder.arm_relay(Relay(tk.hop, tk.succ, raw, frame.sender))
    if ts.holder.relays_at_once(frame.sender, tk.hop):
        engine.send(tk.succ, raw)
        engine.notes[Note.TOKEN_RELAYED_AT_ONCE] += 1
    delay_s = RELAY_RETRANSMITS * engine.timing.token_retransmit_s
    engine.set_timer("relay", delay_s + idle.hold_allowance_s(engine, tk))


def relay(engine: Engine) -> None:
    """The relay timer: the next hop is late; pass our copy on, once."""
    ts = engine.tokens
    r = ts.holder.take_relay()
    cur = engine.active()
    if r is not None and ts.hops.seen == r.hop and cur is not None:
        engine.send(r.dest, r.raw)
        engine.notes[Note.TOKEN_RELAYED] += 1
        ts.holder.starving(r.maker, r.hop, len(cur.members))


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
    hops = ts.hops
    hops.track(hop, HOPS_TRACKED_PER_NODE * len(members), ASK_KEPT)
    retry = engine.timing.token_retransmit_s
    asks = hops.due_asks(hop, members, engine.node_id, engine.now, retry, (ASK_MAX, ASK_TRIES))
    for ask in asks:
        cur = engine.active()
        assert cur is not None
        # First its maker; then everyone (any member serves any token it
        # saw): a maker that sends its tokens to all but us would leave our
        # chain a link behind per rotation, its stall restarting the ring
        # and blamed on us (churn) until we were evicted
        # (tests/engine/test_withheld_tokens.py).
        dest = ask.producer if ask.tries < UNICAST_TOKEN_ASKS else None
        engine.emit_signed(cur.ring, TokenRequest(ask.hop), dest)


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
    ahead = req.hop > engine.tokens.hops.seen
    wake = idle.is_wake(engine, frame, req)
    if wake and not idle.wake_valid(engine, req):
        return
    key = (frame.sender, frame.ring, req.hop)
    gap_s = ANSWER_PERIODS * engine.timing.token_retransmit_s
    if not engine.tokens.hops.answer(key, engine.now, gap_s, ANSWERS_KEPT):
        engine.drops[Drop.TOKEN_REQUEST_REPEAT] += 1
        return
    if wake and idle.woken(engine):
        release_held(engine)
    if ahead:
        return  # nobody has made it yet
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
    seen = engine.detector.tokens.raw_at.get(req.hop)
    raw = seen[0] if seen is not None else engine.tokens.links.linked_to.get(req.hop)
    if cur is not None and cur.ring == frame.ring and raw is not None:
        # Any token we saw, whoever made it: it is signed by its maker, and
        # a member that saw another version for this hop needs ours to prove
        # the equivocation.
        engine.send(frame.sender, raw)


def start_ring(engine: Engine) -> None:
    """The representative starts the new ring's token (after the commit
    token's second rotation): a visit of a virtual hop-0 token."""
    cur = engine.active()
    assert cur is not None
    ring, _, _ = cur
    zero = Token(0, engine.node_id, 0, 0, 0, (), 0, 0, (), bytes(32), LoadReport(0, 0, 0, 0))
    frame = Frame(engine.cluster_id, engine.node_id, ring, zero, bytes(limits.SIGNATURE_BYTES))
    engine.tokens.holder.arrive(engine.now)  # the visit's hold time starts now
    visit(engine, frame, b"")


def visit(engine: Engine, frame: Frame, raw: bytes, *, may_hold: bool = True) -> None:
    """Process the token as its holder and pass it on (or hold it first, on
    an idle ring, unless ``may_hold`` is False: the hold is over)."""
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
    done = recovering and chain.linked(ts.links, tk.hop)
    done = done and _recovery_complete(ts, tk, store, len(queue))
    # The visit that completes recovery sends nothing new, so every other
    # member sees the same quiet rotation and completes on its next visit.
    # Before any new frame: frames we broadcast and then list in no token
    # (this visit ending in a membership round) would be ours alone, and we
    # would deliver them in the transitional view that the others lack.
    if _aru_stuck(engine, ts, store, *_aru(tk, store.aru, me, tk.seq), tk.seq):
        return
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
    back = ts.hops.seq_one_rotation_ago(tk.hop, len(members))
    wanted = store.missing(back if back is not None else 0, cfg.rtr_entries_max)
    rtr = tuple(sorted(set(rtr_left) | set(wanted)))[: cfg.rtr_entries_max]
    aru, aru_id = _aru(tk, store.aru, me, seq)
    fcc = flow.others_fcc(ts.holder, tk, cfg.max_messages, len(members)) + sent + new
    mine = queue.frames_pending
    backlog = flow.others_backlog(ts.holder, tk, cfg.max_messages, len(members)) + mine
    backlog = min(U32_MAX, backlog)
    ts.holder.account(sent + new, mine)
    quiet = idle.quiet(engine, store, sent + new, bool(rtr), aru, seq)
    ts.holder.count_idle(quiet and not recovering)
    if may_hold and _hold(engine, ts, frame, raw):
        return
    if chain.pin_visited(engine, tk.hop, len(members), store):
        # The token we sign names the version we visit: its frames count.
        aru, aru_id = _aru(tk, store.aru, me, seq)
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
        load=_load(engine, store, ts, ring, tk.hop + 1),
    )
    _keep_link(ts, tk.hop, raw)
    _forward(engine, ring, nxt, members)
    if engine.active() != cur:
        return  # our own report convicted us, or a check restarted membership
    ts.holder.visited(Visit(seq, backlog, aru))
    if done:
        delivery.finish(engine)
    else:
        delivery.deliver_ready(engine)


def _aru(tk: Token, held: int, me: int, seq: int) -> tuple[int, int]:
    """The aru and aru_id of our token: lowered to what we hold (``held``)
    if that is less, or reset if we set it last (or nobody did)."""
    if held < tk.aru or tk.aru_id in (me, 0):
        return held, (0 if held >= seq else me)
    return tk.aru, tk.aru_id


def _keep_link(ts: TokenState, hop: int, raw: bytes) -> None:
    if raw:  # not the virtual hop 0 of a ring we start
        ts.links.keep_linked_to(hop, raw)


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
    watch = engine.detector.tokens
    sent, left = 0, []
    late = tk.hop - RTR_FALLBACK_VISITS * n
    stale = [s for s in watch.standing(late) if s not in tk.rtr]
    for seq in (*tk.rtr, *sorted(stale)):
        item = store.frames.get(seq)
        mine = item is not None and item.frame.sender == engine.node_id
        watched = watch.requested_since(seq, tk.hop) <= late
        if (
            item is not None
            and sent < engine.config.max_messages
            and ((mine and seq in tk.rtr) or watched)
        ):
            engine.send(None, item.raw)
            sent += 1
            watch.served(seq)
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
    pv, pv2 = ts.holder.prev_visit, ts.holder.prev_visit2
    return (
        pending == 0
        and pv is not None
        and pv2 is not None
        and pv2.aru == pv2.seq == pv.aru == pv.seq == tk.seq
        and tk.aru == tk.seq
        and store.aru >= tk.seq
    )


def _aru_stuck(
    engine: Engine, ts: TokenState, store: RingStore, aru: int, aru_id: int, seq: int
) -> bool:
    """Totem's fail_recv_const: the same member holds the aru down for too
    many rotations while the ring moves on -> reconfigure without it. Long
    before that, every ARU_STUCK_TOKEN_TIMEOUTS (and at least
    ARU_STUCK_VISITS visits) it is suspected: a
    correct member lacking a frame gets it within a few rotations (any
    holder serves a request standing RTR_FALLBACK_VISITS rotations), so
    only a member that cannot receive at all, or claims it cannot, holds
    the aru that long; failing it alone let it merge straight back."""
    pv = ts.holder.prev_visit
    watch = engine.detector.tokens
    held = pv is not None and aru == pv.aru and aru < seq and aru_id not in (0, engine.node_id)
    stuck = watch.aru_held(held, engine.now)
    span_s = ARU_STUCK_TOKEN_TIMEOUTS * engine.timing.token_timeout_s
    if (
        held
        # Only a member that holds the frame after the aru can blame the
        # member holding it down: when it lacks that frame too, nobody it
        # can name caused the loss (the frame's copies may all be lost).
        and store.aru > aru
        and engine.config.fault_detector
        # Again after as long; at the latest every third of fail_recv_const
        # visits, so that the second suspicion (every member's, together)
        # comes before Totem fails the member: failed, it merges back and
        # holds the aru again, never evicted (on a fast ring fail_recv_const
        # visits pass before 2 * ARU_STUCK_TOKEN_TIMEOUTS).
        and watch.aru_suspect_due(
            engine.now, ARU_STUCK_VISITS, span_s, engine.config.fail_recv_const // 3
        )
    ):
        accusations.suspect(engine, aru_id, "aru_stuck")
    if stuck < engine.config.fail_recv_const or engine.active() is None:
        return engine.active() is None
    engine.enter_gather(engine.now, reason="fail_recv")
    if engine.gather is not None:
        engine.gather.fail.add(aru_id)
        engine.send_join()
    return True


def _hold(engine: Engine, ts: TokenState, frame: Frame, raw: bytes) -> bool:
    """An idle ring slows down: keep the token a while (new work here or a
    member's wake releases it; engine/idle.py)."""
    hold_s = engine.timing.token_hold_idle_s
    if ts.holder.idle_visits < engine.config.seqno_unchanged_const or hold_s <= 0:
        return False
    ts.holder.hold(frame, raw)
    engine.set_timer("token_hold", hold_s)
    return True


def release_held(engine: Engine) -> None:
    """Process a held token now (timer, new work, a wake, or its link
    closed). The visit starts again and forwards without holding; the quiet
    visits go on counting, so an idle ring holds at every visit."""
    me = engine.tokens.holder
    held = me.take()
    engine.cancel_timer("token_hold")
    if held is None or engine.active() is None:
        return
    # The idle hold is not load: the hold we report starts now.
    me.arrive(engine.now)
    visit(engine, *held, may_hold=False)


def on_submit(engine: Engine) -> None:
    """New work: release a token we hold, or wake an idle ring."""
    if engine.state is not State.OPERATIONAL:
        return
    if engine.tokens.holder.held is not None:
        release_held(engine)
        return
    hop = idle.wake_due(engine)
    if hop is not None and engine.ring is not None:
        engine.emit_signed(engine.ring, TokenRequest(hop))


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
    engine.detector.tokens.passed(nxt.succ, engine.now)
    if nxt.frames and cur is not None and len(cur.store.tokens) < cur.store.window:
        seqs = [ref.seq for ref in nxt.frames]
        cur.store.tokens[nxt.hop] = HeldToken(out, min(seqs), max(seqs), engine.node_id)
    ts.hops.made(nxt.hop, nxt.seq, len(members))
    ts.holder.saw(idle.quiet_token(nxt))
    ts.holder.passed_on(nxt.hop, out)
    engine.set_timer("token_loss", engine.timing.token_timeout_s)
    cur = engine.active()
    if cur is not None and not chain.add(engine, mine, out, members, cur.store):
        return
    if nxt.succ == engine.node_id:
        # A ring of one: the token comes straight back. Take the next visit
        # from a timer so time advances between visits.
        ts.holder.hold(mine, out)
        ts.holder.arrive(engine.now)
        busy = engine.sendq.frames_pending or engine.state is State.RECOVERY
        engine.set_timer("token_hold", BUSY_HOLD_S if busy else engine.timing.token_hold_idle_s)
    else:
        rtx_s = engine.timing.token_retransmit_s
        engine.set_timer("token_rtx", rtx_s + idle.hold_allowance_s(engine, nxt))


def retransmit(engine: Engine) -> None:
    """No later hop seen since we passed the token: send it again."""
    last = engine.tokens.holder.last_sent
    if last is None or engine.active() is None:
        return
    engine.send(None, last.raw)
    engine.set_timer("token_rtx", engine.timing.token_retransmit_s)


def _load(engine: Engine, store: RingStore, ts: TokenState, ring: RingId, hop: int) -> LoadReport:
    # From the token's arrival at the node (the driver's receive queue
    # included) to its forwarding; or, if longer, the longest any datagram
    # waited in the receive queue since our previous report.
    load = engine.detector.load
    held_s = max(engine.now - ts.holder.arrived + load.wait_s, load.take_peak())
    where = evidence.ReportPosition(ring, "hop", hop)
    return faults.load_report(engine, held_s, len(store.frames), where)
