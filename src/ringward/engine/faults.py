"""The fault detector inside the engine: observing, accusing, convicting.

Glue between the engine's message handlers and ``Detector`` (state) and
``evidence`` (pure checks). Everything here runs on verified signed frames
only (engine.receive checked the signature, or this module does for
embedded ones), so nothing a third party forges can raise a score.

* Every token of the ring is checked against its turn, its successor, the
  token this member saw for the same position (equivocation) and, once
  engine/chain.py links it, its predecessor (Totem's transition rules); a
  failed check is a proof. A link nobody can close is suspected.
* A member whose signed load reports were past the limits in
  ``overload_reports`` of its last ``2 * overload_reports - 1`` tokens
  (late ones included) is convicted of overload by its own statements.
* Unprovable signals raise the peer's score; at the threshold this member
  signs an accusation, broadcast at once and carried in its joins.
* A verdict (proof, or f+1 accusers) fails the target in the membership
  round it starts; every member sees the same evidence in the joins and the
  commit token's certificate, and the target, seeing it, rejects itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine import evidence, validate
from ringward.engine.api import Evicted, Rejoined
from ringward.engine.detector import Verdict
from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
from ringward.engine.ringstore import RingStore
from ringward.errors import WireError
from ringward.wire import (
    Accusation,
    Frame,
    Join,
    Kind,
    Proof,
    RingId,
    Token,
    encode,
    limits,
)
from ringward.wire import signing_bytes as _signing_bytes

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.token import TokenState

__all__ = [
    "absorb",
    "check_transition",
    "join_evidence",
    "link_broken",
    "observe_token",
    "on_accusation",
    "on_install",
    "on_join",
    "on_proof",
    "on_token_loss",
    "prove",
]

# Tokens remembered per hop for proofs, as a multiple of the ring size.
ROTATIONS_KEPT = 2
# An accusation is judged this many token timeouts after it arrived: time for
# the other members' own observations to corroborate it (a mute holder costs
# about two token timeouts per loss, and takes a few losses to accuse).
REVIEW_TOKEN_TIMEOUTS = 8
PENDING_FALSE_MAX = 1024
# Evidence all joins of one membership round may carry together (bytes):
# leaves room in one datagram for the commit token's keys and entries.
JOIN_EVIDENCE_BYTES = 40_000
# Served-request checks pending at once.
WITHHOLD_CHECKS_MAX = 256


def _verify(engine: Engine, frame: Frame) -> bool:
    return engine.security.verify(frame.sender, _signing_bytes(frame), frame.signature)


def _members_of(engine: Engine, ring: RingId) -> tuple[int, ...] | None:
    return engine.known_rings.get(ring)


def prove(engine: Engine, target: int, kind: str, statements: tuple[Frame, ...]) -> None:
    """Signed statements that convict ``target`` (engine/validate.py)."""
    if engine.config.fault_detector and target != engine.node_id:
        _prove(engine, target, kind, statements)


def _prove(engine: Engine, target: int, kind: str, statements: tuple[Frame, ...]) -> None:
    """We hold a proof: sign it, convict, broadcast it to every node."""
    ring = engine.ring or RingId(engine.node_id, 0)
    try:
        frame, raw = engine.sign_frame(ring, Proof(target, kind, statements))
    except WireError:
        # Cannot happen with tokens bounded by rule:size; never raise anyway.
        engine.drops[Drop.PROOF_TOO_LARGE] += 1
        return
    v = engine.detector.convict(engine.now, target, kind, True, (frame,))
    if v is None:
        return
    engine.overload_run.pop(target, None)  # spent: a readmitted node starts afresh
    engine.notes[f"{Note.PROOF}:{kind}"] += 1
    engine.send(None, raw)
    _act(engine, v)


def _act(engine: Engine, v: Verdict) -> None:
    """A new verdict: fail the target now (or, if it is us, stand down)."""
    if v.target == engine.node_id:
        engine.reject(v)
        return
    g = engine.gather
    if engine.state is State.GATHER and g is not None:
        if v.target in g.proc and v.target not in g.fail:
            g.fail.add(v.target)
            engine.set_timer("consensus", engine.config.consensus_timeout_ms)
            engine.send_join()
        return
    in_ring = v.target in engine.members or (
        engine.pending is not None and v.target in engine.pending.members
    )
    if in_ring and engine.state is not State.REJECTED:
        engine.enter_gather(engine.now, reason="evict")


# ------------------------------------------------------------------ tokens


def observe_token(
    engine: Engine, frame: Frame, raw: bytes, members: tuple[int, ...], store: RingStore
) -> bool:
    """Check a verified token of our ring; False when it must not be used
    (it convicted its maker)."""
    if not engine.config.fault_detector:
        return True
    tk = frame.body
    assert isinstance(tk, Token)
    ts = engine.tokens
    seen = ts.raw_at.get(tk.hop)
    broken = _broken_rule(engine, frame, raw, members, seen)
    if broken is not None:
        _prove(engine, frame.sender, *broken)
        return False
    if seen is not None:
        return True  # a copy of a token we have
    fresh = tk.hop > ts.hop_seen
    _remember(ts, tk.hop, raw, frame, engine.now, len(members))
    before = ts.raw_at.get(tk.hop - 1)
    if before is not None and engine.digest(before[0]) == tk.prev:
        prev = before[1].body
        assert isinstance(prev, Token)
        _observe_visit(engine, frame, prev, ts.seen_at[tk.hop - 1], fresh, store)
    # A link that does not match is fetched by engine/chain.py.
    _check_load(engine, frame, tk)
    review_accusations(engine)
    return True


def _broken_rule(
    engine: Engine,
    frame: Frame,
    raw: bytes,
    members: tuple[int, ...],
    seen: tuple[bytes, Frame] | None,
) -> tuple[str, tuple[Frame, ...]] | None:
    """The proof kind and statements ``frame`` makes against its maker."""
    tk = frame.body
    assert isinstance(tk, Token)
    sender = frame.sender
    if tk.hop < 1 or evidence.producer(members, tk.hop) != sender:
        return "rule:turn", (frame,)
    if tk.succ != evidence.successor(members, sender):
        return "rule:succ", (frame,)
    if evidence.oversized(tk, engine.config):
        return "rule:size", (frame,)
    if seen is not None:
        return ("equivocation", (seen[1], frame)) if seen[0] != raw else None
    return None


def check_transition(engine: Engine, prev: Frame, frame: Frame) -> None:
    """``frame`` links to ``prev`` (engine/chain.py): check the transition
    its maker made; a broken rule convicts it."""
    if not engine.config.fault_detector:
        return
    tk, before = frame.body, prev.body
    assert isinstance(tk, Token) and isinstance(before, Token)
    rule = evidence.transition_rule(before, tk, frame.sender)
    if rule is not None:
        _prove(engine, frame.sender, f"rule:{rule}", (prev, frame))


def link_broken(engine: Engine, maker: int) -> None:
    """Nobody could produce the token ``maker``'s token links to."""
    if engine.config.fault_detector:
        _suspect(engine, maker, "broken_link")


def _remember(ts: TokenState, hop: int, raw: bytes, frame: Frame, now: float, n: int) -> None:
    # Kept relative to the newest hop, not this one: replayed old tokens of
    # the ring must not pile up between two fresh ones.
    top = max(hop, ts.hop_seen)
    if hop <= top - ROTATIONS_KEPT * n:
        return
    ts.raw_at[hop] = (raw, frame)
    ts.seen_at[hop] = now
    for old in [h for h in ts.raw_at if h <= top - ROTATIONS_KEPT * n]:
        del ts.raw_at[old]
        ts.seen_at.pop(old, None)


def _observe_visit(
    engine: Engine, frame: Frame, prev: Token, prev_at: float, fresh: bool, store: RingStore
) -> None:
    """Unprovable signals from one visit of ``frame.sender``."""
    tk = frame.body
    assert isinstance(tk, Token)
    cfg, sender = engine.config, frame.sender
    if fresh and (engine.now - prev_at) * 1000 > cfg.slow_hold_ms:
        _suspect(engine, sender, "slow_hold")
    ts = engine.tokens
    # Requests for its own frames it passed on unserved (a correct holder
    # serves all of them when there are at most max_messages), or took out
    # of the list though no copy reached us by its next visit.
    withheld = False
    for seq, since in [(q, t) for (x, q), t in ts.withhold_check.items() if x == sender]:
        del ts.withhold_check[(sender, seq)]
        if ts.dup_at.get(seq, -1.0) < since:
            withheld = True
    if 0 < len(prev.rtr) <= cfg.max_messages:
        still = set(tk.rtr)
        for seq in prev.rtr:
            item = store.frames.get(seq)
            if item is None or item.frame.sender != sender:
                continue
            if seq in still:
                withheld = True
            elif len(ts.withhold_check) < WITHHOLD_CHECKS_MAX:
                # A copy may overtake the token that carried the request:
                # any copy since the token before that one counts.
                ts.withhold_check[(sender, seq)] = ts.seen_at.get(tk.hop - 2, prev_at)
    if withheld:
        _suspect(engine, sender, "withhold")


def _check_load(engine: Engine, frame: Frame, tk: Token) -> None:
    """Sustained overload: over the limits in ``overload_reports`` of the
    maker's last ``2 * overload_reports - 1`` reports we saw.

    Not "in a row": an overloaded node makes tokens get lost, each loss ends
    the ring, and the first visit of a new ring finds little queued, so its
    short hold would restart a run that the next long one continues (4
    nodes, seed 2, slowed 50x for 4 s: over, over, short, over, over - never
    three in a row). A majority of the recent visits is still "sustained": a
    healthy node's single long pause is forgotten within a few visits.
    """
    cfg, sender = engine.config, frame.sender
    recent = engine.overload_run.setdefault(sender, [])
    if any(f.ring == frame.ring and _hop(f) == tk.hop for f, _ in recent):
        return  # a copy of a report we judged (relays, retransmissions)
    recent.append((frame, evidence.overloaded(tk.load, cfg)))
    del recent[: -(2 * cfg.overload_reports - 1)]
    over = tuple(f for f, o in recent if o)
    if not over:
        del engine.overload_run[sender]  # keep only members worth watching
    elif len(over) >= cfg.overload_reports:
        _prove(engine, sender, "overload", over[-cfg.overload_reports :])


def _hop(frame: Frame) -> int:
    tk = frame.body
    assert isinstance(tk, Token)
    return tk.hop


def late_token(engine: Engine, frame: Frame) -> None:
    """A signed token of the ring we just left, arriving after its loss
    started a membership round: its load report still counts. An overloaded
    holder's token is late because of the overload, so its late report is
    the one that shows it (4 nodes, seed 2: two of the three that convict)."""
    if engine.config.fault_detector:
        tk = frame.body
        assert isinstance(tk, Token)
        _check_load(engine, frame, tk)


def own_token(engine: Engine, frame: Frame, raw: bytes, members: tuple[int, ...]) -> None:
    """A token this node just made: remembered like any other (so it can be
    served and checked against), and its own load report judged by the same
    rule everyone else applies to it."""
    if not engine.config.fault_detector:
        return
    tk = frame.body
    assert isinstance(tk, Token)
    _remember(engine.tokens, tk.hop, raw, frame, engine.now, len(members))
    _check_load(engine, frame, tk)


def on_token_loss(engine: Engine) -> None:
    """The token died: remember whose visit it died at; that member is
    scored only if it then answers the membership round (a crashed member is
    simply failed, not suspected)."""
    last = _loss_suspect(engine)
    if last is not None:
        engine.loss_blame = (last, engine.now)


def _loss_suspect(engine: Engine) -> int | None:
    """Whom a token loss now is blamed on: the member the last token seen
    went to."""
    ts = engine.tokens
    last = ts.last_succ
    if last is None and engine.state is State.RECOVERY and engine.pending is not None:
        # No token of the new ring was ever seen: its representative, who
        # starts it, did not (a mute representative was never blamed, and
        # every ring it led died in recovery: Byzantine soak seed 1012).
        last = engine.pending.ring.rep
    # A token not linked here may be one its successor holds for its link
    # (recovery, engine/chain.py): its maker is the one suspected then.
    if last is not None and last != engine.node_id and ts.linked >= ts.hop_seen:
        return last
    return None


# ------------------------------------------------------------- accusations


def _suspect(engine: Engine, peer: int, signal: str) -> None:
    det = engine.detector
    total = det.score(engine.now, peer, signal)
    ring = _bound_ring(engine)
    if (
        total >= engine.config.suspicion_threshold
        and ring is not None
        and _in_play(engine, peer)
        and det.accused.get(peer) != ring
        and peer not in det.verdicts
    ):
        det.accused[peer] = ring
        hop = max(engine.tokens.hop_seen, 0)
        frame, raw = engine.sign_frame(
            ring, Accusation(peer, hop, det.top_signal(peer), int(total))
        )
        engine.notes[f"{Note.ACCUSE}:{det.top_signal(peer)}"] += 1
        engine.send(None, raw)
        _count_accusation(engine, frame, peer)


def _bound_ring(engine: Engine) -> RingId | None:
    """The ring accusations are bound to: our installed ring, or before the
    first one is installed, the ring being formed. Without the latter no
    accusation could be made until a first ring was installed, and a
    break-link member that killed every first recovery was never evicted
    (Byzantine soak seed 1115: 10 nodes, every member suspected it in
    every round, and nobody had a ring to accuse it in)."""
    if engine.ring is not None:
        return engine.ring
    return engine.pending.ring if engine.pending is not None else None


def _in_play(engine: Engine, peer: int) -> bool:
    """Whether ``peer`` is in our ring, or in the one being formed (a node
    that kills every new ring before it is installed must be accusable)."""
    return (
        peer in engine.members
        or (engine.pending is not None and peer in engine.pending.members)
        or (engine.gather is not None and peer in engine.gather.proc)
    )


def _count_accusation(engine: Engine, frame: Frame, target: int) -> None:
    det = engine.detector
    ring = _bound_ring(engine)
    if not det.add_accusation(frame, target, ring):
        return
    accusers = det.accusers(target, ring)
    if len(accusers) >= det.f + 1:
        v = det.convict(engine.now, target, "accused", False, tuple(accusers))
        if v is not None:
            _act(engine, v)


def on_accusation(engine: Engine, frame: Frame, verified: bool = True) -> None:
    """A signed accusation (broadcast, or carried in a join)."""
    acc = frame.body
    if not engine.config.fault_detector or not isinstance(acc, Accusation):
        return
    if not verified and not _verify(engine, frame):
        engine.drops[Drop.ACCUSATION_BAD_SIGNATURE] += 1
        return
    if not verified and validate.static_rule(frame, engine.config) is not None:
        engine.drops[Drop.ACCUSATION_INVALID] += 1  # carried in a join: the validator's rules too
        return
    det = engine.detector
    if acc.target not in det.roster:
        engine.drops[Drop.ACCUSATION_UNKNOWN_TARGET] += 1
        return
    _count_accusation(engine, frame, acc.target)
    if frame.sender in (engine.node_id, acc.target) or _bound_ring(engine) is None:
        return
    seen = det.accused_at.setdefault(acc.target, {})
    if len(seen) < len(det.roster):
        seen[frame.sender] = engine.now
    # Judged later: an accusation nobody corroborates by then weighs against
    # the accuser (a framer is evicted in turn). Distinct accusations of
    # one accuser about one target count at most once per rotation.
    key = (frame.sender, acc.target, frame.ring)
    if len(det.false_last) > PENDING_FALSE_MAX:
        det.false_last.clear()  # a bound: at worst one accusation reviewed twice
    last = det.false_last.get(key)
    n = max(1, len(engine.members))
    if (last is None or acc.hop >= last + n) and len(det.pending_false) < PENDING_FALSE_MAX:
        det.false_last[key] = acc.hop
        due = engine.now + REVIEW_TOKEN_TIMEOUTS * engine.config.token_timeout_ms / 1000
        det.pending_false.append((due, frame.sender, acc.target, frame.ring))
    review_accusations(engine)


def review_accusations(engine: Engine) -> None:
    """Accusations whose review time came: uncorroborated ones (no other
    accuser in that ring, no verdict, and the target unsuspected here)
    count against their accuser."""
    det = engine.detector
    span = 2 * REVIEW_TOKEN_TIMEOUTS * engine.config.token_timeout_ms / 1000
    while det.pending_false and det.pending_false[0][0] <= engine.now:
        due, accuser, target, _ = det.pending_false.popleft()
        since = due - span
        # Corroborated: f others accused it around then (in any ring:
        # members accuse when their own scores cross, not in step), so f+1
        # in all, as many as evict; or it was evicted, or we suspect it
        # ourselves. Up to f accusers may all be liars: two framers of one
        # target corroborated each other and were never evicted (Byzantine
        # soak seed 1034, 10 nodes).
        others = [
            a for a, t in det.accused_at.get(target, {}).items() if a != accuser and t >= since
        ]
        evicted = [t for t in det.evictions.get(target, []) if t >= since]
        if (
            len(others) < max(1, det.f)
            and not evicted
            and target not in det.verdicts
            and det.total(engine.now, target) < engine.config.suspicion_threshold / 4
            and accuser not in det.verdicts
        ):
            _suspect(engine, accuser, "false_accusation")


def on_proof(engine: Engine, frame: Frame) -> None:
    """A proof (broadcast, or carried in a join/commit): check it alone."""
    proof = frame.body
    if not engine.config.fault_detector or not isinstance(proof, Proof):
        return
    det = engine.detector
    if proof.target in det.verdicts:
        return
    key = engine.digest(
        b"".join(
            [proof.target.to_bytes(2, "big"), proof.kind.encode(), b"\0"]
            + [_signing_bytes(s) for s in proof.statements]
        )
    )
    if key in det.checked:
        return
    spent = det.amnesty.get(proof.target, -1)
    reason = None
    if all(s.ring.seq > spent for s in proof.statements):
        reason = evidence.check_proof(
            proof, lambda f: _verify(engine, f), lambda r: _members_of(engine, r), engine.config
        )
    if len(det.checked) > 1024:
        det.checked.clear()
    det.checked[key] = reason or ""
    if reason is None:
        engine.drops[Drop.PROOF_REFUSED] += 1
        return
    v = det.convict(engine.now, proof.target, reason, True, (frame,))
    if v is not None:
        engine.overload_run.pop(proof.target, None)
        _act(engine, v)


# -------------------------------------------------------------- membership


def on_join(engine: Engine, frame: Frame) -> None:
    """Evidence and signals a join carries (before its sets are used)."""
    if not engine.config.fault_detector:
        return
    j = frame.body
    assert isinstance(j, Join)
    absorb(engine, j.proofs, j.accusations)
    det = engine.detector
    for proposer in [p for p, outs in det.proposed.items() if frame.sender in outs]:
        det.proposed[proposer] = frozenset()  # we heard the node it proposed
    blame = engine.loss_blame
    if blame is not None and blame[0] == frame.sender:
        engine.loss_blame = None
        if engine.now - blame[1] <= engine.config.consensus_timeout_ms / 1000:
            _suspect(engine, frame.sender, "token_loss")


def on_restart_by_join(engine: Engine, frame: Frame) -> None:
    """A member's join is about to restart our membership round."""
    if not engine.config.fault_detector:
        return
    ring = engine.ring
    j = frame.body
    assert isinstance(j, Join)
    ts = engine.tokens
    if engine.state is State.OPERATIONAL or (
        engine.state is State.RECOVERY and engine.pending is not None
    ):
        since = ts.last_seen_t if ts.hop_seen >= 0 else ts.ring_start_t
        if (engine.now - since) * 1000 >= 0.8 * engine.config.token_timeout_ms:
            # The token has been silent nearly as long as our own timeout,
            # and another member's timeout went just before ours: blame
            # whom our own timeout would have. Only the first members to
            # time out did, which took a mute holder 6 rounds (8 s) to reach
            # f+1 accusers (Byzantine soak seed 1027), or never (a mute
            # representative, seed 1012).
            last = _loss_suspect(engine)
            if last is not None:
                engine.loss_blame = (last, engine.now)
    if (
        engine.state is not State.OPERATIONAL
        or ring is None
        or frame.sender not in engine.members
        or (engine.now - engine.tokens.last_seen_t) * 1000 >= engine.config.slow_hold_ms
        or _rekey_due(engine, frame.sender)
    ):
        return
    # It restarts membership while the token was just here: a member that
    # lost the token would have waited token_timeout_ms.
    outsiders = frozenset(j.proc) - set(j.fail) - set(engine.members)
    evicted = frozenset(n for n in outsiders if engine.banned(n))
    if not outsiders:
        _suspect(engine, frame.sender, "churn")
    elif evicted == outsiders:
        # Only nodes we evicted (our joins fail them at once, so the round
        # is short). A member that missed the eviction (it was down) hears
        # their traffic and proposes them at its merge back-off; more often
        # than that is churn (a restarted correct member was accused of
        # `phantom` for it, in 0.6 s).
        if not engine.detector.may_propose_evicted(
            engine.now, frame.sender, evicted, engine.config.merge_timeout_ms / 1000
        ):
            _suspect(engine, frame.sender, "churn")
    elif len(engine.detector.proposed) < len(engine.detector.roster):
        # Proposing to add a node (a merge, a rejoin) is what a member that
        # heard an outsider must do; judged when the round ends: if we heard
        # none of the proposed nodes and none made it in, it was churn
        # ("phantom": it also cost everyone a consensus timeout).
        engine.detector.proposed[frame.sender] = outsiders - evicted


def _rekey_due(engine: Engine, sender: int) -> bool:
    """The representative restarts the ring once per rekey interval."""
    cfg = engine.config
    return (
        engine.ring is not None
        and sender == engine.ring.rep
        and cfg.rekey_interval_ms > 0
        and (engine.now - engine.installed_at) * 1000 >= cfg.rekey_interval_ms * 0.9
    )


def absorb(engine: Engine, proofs: tuple[Frame, ...], accusations: tuple[Frame, ...]) -> None:
    for p in proofs:
        if p.kind is Kind.PROOF:
            on_proof(engine, p)
    for a in accusations:
        if a.kind is Kind.ACCUSATION:
            on_accusation(engine, a, verified=False)


def join_evidence(engine: Engine) -> tuple[tuple[Frame, ...], tuple[Frame, ...]]:
    """What our join carries: the proofs and accusations behind every
    verdict, and every accusation of the current ring we hold."""
    if not engine.config.fault_detector:
        return (), ()
    det = engine.detector
    proofs: list[Frame] = []
    accusations: list[Frame] = []
    for _, v in sorted(det.verdicts.items()):
        if v.proof and len(proofs) < limits.JOIN_PROOFS_MAX:
            proofs.extend(p for p in v.evidence[:1] if _nests_in_cert(p))
        elif not v.proof:
            accusations.extend(v.evidence)
    for target in sorted(det.accusations):
        if target not in det.verdicts:
            accusations.extend(det.accusers(target, _bound_ring(engine)))
    # A byte budget per join, so that a commit token carrying every new
    # member's join as its certificate stays within one datagram.
    budget = JOIN_EVIDENCE_BYTES // max(1, len(engine.gather.proc) if engine.gather else 1)
    return _within(proofs, budget // 2), _within(
        accusations[: limits.JOIN_ACCUSATIONS_MAX], budget // 2
    )


def _nests_in_cert(proof: Frame) -> bool:
    """Whether a proof can ride in a join inside a commit certificate: the
    statements sit at the wire's deepest nesting level there, so they may
    embed nothing themselves. Other proofs (an impossible commit token, say)
    travel only by broadcast; the fail sets carry their effect."""
    body = proof.body
    return isinstance(body, Proof) and all(
        isinstance(s.body, Token)
        or (isinstance(s.body, Join) and not s.body.proofs and not s.body.accusations)
        for s in body.statements
    )


def _within(frames: list[Frame], budget: int) -> tuple[Frame, ...]:
    out, used = [], 0
    for f in frames:
        size = len(encode(f))
        if used + size > budget:
            continue
        out.append(f)
        used += size
    return tuple(out)


def on_install(engine: Engine, members: tuple[int, ...], view: str) -> None:
    """A regular view is installed: announce the evictions it carries out,
    readmit nodes whose cool-down is over."""
    det = engine.detector
    proposed, det.proposed = det.proposed, {}
    for sender, outsiders in sorted(proposed.items()):
        if sender in members and outsiders and outsiders.isdisjoint(members):
            _suspect(engine, sender, "phantom")
    # Verdicts forgiven before this view, and current ones (the current
    # verdict of a target wins: one announcement per target).
    due = {**det.unannounced, **det.verdicts}
    det.unannounced = {}
    for target, v in sorted(due.items(), key=lambda tv: tv[0]):
        if target not in members and not v.announced and target != engine.node_id:
            v.announced = True
            engine.emit(Evicted(target, v.reason, v.proof))
    for target in det.expired(engine.now):
        if target != engine.node_id:
            det.forgive(engine.now, target, engine.ring_seq_max)
    if engine.rejoining:
        engine.rejoining = False
        engine.emit(Rejoined(view))
