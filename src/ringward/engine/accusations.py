"""Accusations, proofs received, and the evidence joins carry.

Unprovable signals raise a peer's score (engine/detector.py); at the
threshold this member signs an accusation, broadcast at once and carried in
its joins, and f+1 accusers convict. A received proof is checked
(engine/evidence.py) and acted on like our own (engine/verdicts.py). Every
join and commit certificate brings the evidence behind its fail set, so
every member sees the same verdicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ringward.engine import evidence, validate, verdicts
from ringward.engine.api import Evicted, Rejoined
from ringward.engine.detector import LossBlame, Verdict
from ringward.engine.membership import State
from ringward.engine.reasons import Drop, Note
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

__all__ = [
    "absorb",
    "commit_suspect",
    "join_evidence",
    "loss_blame",
    "loss_suspect",
    "on_accusation",
    "on_install",
    "on_join",
    "on_proof",
    "on_restart_by_join",
    "review_accusations",
    "suspect",
]

# An accusation is judged this many token timeouts after it arrived: time for
# the other members' own observations to corroborate it (a mute holder costs
# about two token timeouts per loss, and takes a few losses to accuse).
REVIEW_TOKEN_TIMEOUTS = 8
# Evidence all joins of one membership round may carry together (bytes):
# leaves room in one datagram for the commit token's keys and entries.
JOIN_EVIDENCE_BYTES = 40_000
# A join arriving after the token was silent for this fraction of our own
# token timeout: whoever the token died at is blamed as our timeout would.
SILENT_TOKEN_FRACTION = 0.8
# A ring restarted by its representative after this fraction of the rekey
# interval is a rekey, not churn (the timer fires at the full interval).
REKEY_DUE_FRACTION = 0.9
# Signals only their accuser can observe (a key sealed to it alone): an
# accusation of one is not held against its accuser when nobody follows it.
# A liar using the name gains nothing from it: f+1 accusers still evict.
PRIVATE_SIGNALS = frozenset({"bad_commit"})
# How far (in ring seq) from the highest ring seq known the accusations
# added up across rings may lie: four rounds.
ACCUSATION_SEQ_WINDOW = 4 * validate.RING_SEQ_STEP


def commit_suspect(engine: Engine) -> int | None:
    """Who holds the commit token of the ring we entered, when it has not
    come round (members still waiting in GATHER blame through
    recovery._watch when a new round replaces a stalled one)."""
    w = engine.detector.commit_watch
    if w is None or w.done or w.holder == engine.node_id:
        return None
    pending = engine.pending
    return w.holder if pending is not None and pending.ring == w.ring else None


def loss_blame(engine: Engine) -> LossBlame | None:
    """What a ring that died here is blamed on: the member holding the
    commit token when the ring being formed never started
    (recovery.observe_commit), else the token's last successor
    (loss_suspect)."""
    stuck = commit_suspect(engine)
    no_token = engine.detector.tokens.last_succ is None
    if stuck is not None and (engine.state is State.COMMIT or no_token):
        return LossBlame(stuck, engine.now, "commit_loss")
    last = loss_suspect(engine)
    return LossBlame(last, engine.now) if last is not None else None


def loss_suspect(engine: Engine) -> int | None:
    """Whom a token loss now is blamed on: the member the last token seen
    went to."""
    last = engine.detector.tokens.last_succ
    if last is None and engine.state is State.RECOVERY and engine.pending is not None:
        # No token of the new ring was ever seen: its representative, who
        # starts it, did not (a mute representative was never blamed, and
        # every ring it led died in recovery: Byzantine soak seed 1012).
        last = engine.pending.ring.rep
    # A token not linked here may be one its successor holds for its link
    # (recovery, engine/chain.py): its maker is the one suspected then.
    ts = engine.tokens
    if last is not None and last != engine.node_id and ts.links.linked >= ts.hops.seen:
        return last
    return None


def suspect(engine: Engine, peer: int, signal: str) -> None:
    det = engine.detector
    _score_deferred(engine)
    if det.defer(engine.now, peer, signal):
        engine.notes[Note.SUSPICION_DEFERRED] += 1
        return
    _score(engine, peer, signal)


def _score_deferred(engine: Engine) -> None:
    """Score the held-back signals whose time came (detector.defer)."""
    for d in engine.detector.deferred_due(engine.now):
        _score(engine, d.peer, d.signal)


def _score(engine: Engine, peer: int, signal: str) -> None:
    _accuse(engine, peer, engine.detector.score(engine.now, peer, signal))


def accuse_in_round(engine: Engine) -> None:
    """A commit round bound us to its ring: accuse the members whose scores
    are over the threshold already. A score that crossed it while no ring
    was bound (between rounds, before any ring was installed) made no
    accusation, and a member that kills every commit round was then never
    evicted (Byzantine soak seed 70067)."""
    if engine.pending is None or engine.ring is not None:
        return
    for peer in engine.pending.members:
        if peer != engine.node_id:
            _accuse(engine, peer, engine.detector.total(engine.now, peer))


def _accuse(engine: Engine, peer: int, total: float) -> None:
    det = engine.detector
    ring = _accusation_ring(engine)
    if (
        total >= engine.config.suspicion_threshold
        and ring is not None
        and _in_play(engine, peer)
        and det.may_accuse(peer, ring)
    ):
        det.accuse(peer, ring)
        hop = max(engine.tokens.hops.seen, 0)
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
    every round, and nobody had a ring to accuse it in). While recovering
    into a ring, that ring: the members out of recovery first accuse in it,
    and ours, bound to the ring we are leaving, were older than theirs and
    never counted there; the two halves convicted apart (Byzantine soak
    seed 190543: a correct member was left out of the ring for good)."""
    if engine.pending is not None and (engine.ring is None or engine.state is State.RECOVERY):
        return engine.pending.ring
    return engine.ring


def _accusation_ring(engine: Engine) -> RingId | None:
    """The ring our accusations name: the bound one, or, with none (never
    installed a ring, nor in a round's commit: one whose certificate was
    altered on the way is refused before it binds), the round we gather
    for, named by the highest ring seq we heard, which the members that did
    enter that round count (seed 210737: three members refused every round
    and never accused). Accusations made to us are not reviewed then."""
    ring = _bound_ring(engine)
    if ring is None and engine.state is State.GATHER:
        return RingId(engine.node_id, engine.ring_seq_max)
    return ring


def _in_play(engine: Engine, peer: int) -> bool:
    """Whether ``peer`` is in our ring, or in the one being formed (a node
    that kills every new ring before it is installed must be accusable)."""
    return (
        peer in engine.members
        or (engine.pending is not None and peer in engine.pending.members)
        or (engine.gather is not None and peer in engine.gather.proc)
    )


def _counts(engine: Engine, ring: RingId, target: int) -> bool:
    """Whether an accusation bound to ``ring`` counts here: ours
    (_bound_ring), the ring being formed, or one newer than the ring we
    have installed (members install at different moments: the first out of
    recovery accuse in a ring the rest are still recovering, or whose
    recovery failed here; dropping those split the ring on the verdict,
    Byzantine soak seed 4034). Never an older ring's (a replay), nor one
    from before ``target`` was forgiven."""
    if ring == _bound_ring(engine):
        return True
    if engine.pending is not None and ring == engine.pending.ring:
        return True
    if ring.seq <= engine.detector.amnesty.get(target, -1):
        return False
    if engine.ring is not None:
        return ring.seq > engine.ring.seq
    return ring.seq >= engine.ring_entered


def _count_accusation(engine: Engine, frame: Frame, target: int) -> None:
    det = engine.detector
    if not det.add_accusation(frame, target, _counts(engine, frame.ring, target)):
        return
    accusers = _accusers(engine, target)
    if len(accusers) >= det.accusers_needed:
        v = det.convict(engine.now, target, "accused", False, tuple(accusers))
        if v is not None:
            engine.act(v)


def _accusers(engine: Engine, target: int) -> list[Frame]:
    """The accusations of ``target`` that count here now (one per accuser,
    its latest): those of our own ring, and those of any ring that counts
    here (``_counts``) within ACCUSATION_SEQ_WINDOW of the highest ring seq
    we know. Members that share no ring since ours accuse in different
    rounds' rings: counted ring by ring, none reached f+1 while each round
    died of the same member (seed 210737). The window keeps the sum to
    one stretch of rounds: accusations of incidents far apart, none of
    them f+1 strong (replayed, say, to a node that just restarted), do not
    add up, and an accuser still suspecting the target accuses again in
    each new round."""
    own, top = _bound_ring(engine), engine.ring_seq_max
    return [
        f
        for f in engine.detector.accusations.get(target, {}).values()
        if _counts(engine, f.ring, target)
        and (f.ring == own or abs(f.ring.seq - top) <= ACCUSATION_SEQ_WINDOW)
    ]


def on_accusation(engine: Engine, frame: Frame, verified: bool = True) -> None:
    """A signed accusation (broadcast, or carried in a join)."""
    acc = frame.body
    if not engine.config.fault_detector or not isinstance(acc, Accusation):
        return
    if not verified and not verdicts.verify(engine, frame):
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
    # Judged later: an accusation nobody corroborates by then weighs against
    # the accuser (a framer is evicted in turn). Distinct accusations of
    # one accuser about one target count at most once per rotation.
    if acc.signal in PRIVATE_SIGNALS:
        return
    n = max(1, len(engine.members))
    if det.heard(engine.now, frame.sender, acc.target, frame.ring, acc.hop, n):
        due = engine.now + REVIEW_TOKEN_TIMEOUTS * engine.timing.token_timeout_s
        det.review(due, frame.sender, acc.target, frame.ring)
    review_accusations(engine)


def review_accusations(engine: Engine) -> None:
    """Accusations whose review time came: uncorroborated ones (no other
    accuser in that ring, no verdict, and the target unsuspected here)
    count against their accuser."""
    _score_deferred(engine)
    det = engine.detector
    span = 2 * REVIEW_TOKEN_TIMEOUTS * engine.timing.token_timeout_s
    for due, accuser, target in det.reviews_due(engine.now):
        since = due - span
        # Corroborated: f others accused it around then (in any ring:
        # members accuse when their own scores cross, not in step), so f+1
        # in all, as many as evict; or it was evicted, or we suspect it
        # ourselves. Up to f accusers may all be liars: two framers of one
        # target corroborated each other and were never evicted (Byzantine
        # soak seed 1034, 10 nodes).
        others = det.accused_since(target, since, besides=accuser)
        if (
            len(others) < max(1, det.f)
            and not det.evicted_since(target, since)
            and target not in det.verdicts
            and det.total(engine.now, target) < engine.config.suspicion_threshold / 4
            and accuser not in det.verdicts
        ):
            suspect(engine, accuser, "false_accusation")


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
    if det.check_known(key):
        return
    spent = det.amnesty.get(proof.target, -1)
    if proof.kind == "overload" and (
        max(s.ring.seq for s in proof.statements) + evidence.OVERLOAD_RING_SPAN
        < engine.ring_seq_max
        or min(s.ring.seq for s in proof.statements) <= det.restarted_at
    ):
        engine.drops[Drop.PROOF_STALE] += 1  # an overload long over, or before our restart
        return
    reason = None
    if all(s.ring.seq > spent for s in proof.statements):
        reason = evidence.check_proof(
            proof,
            lambda f: verdicts.verify(engine, f),
            lambda r: verdicts.members_of(engine, r),
            engine.config,
        )
    det.checked_proof(key, reason)
    if reason is None:
        engine.drops[Drop.PROOF_REFUSED] += 1
        return
    v = det.convict(engine.now, proof.target, reason, True, (frame,))
    if v is not None:
        det.spent(proof.target)
        engine.act(v)


# -------------------------------------------------------------- membership


def on_join(engine: Engine, frame: Frame) -> None:
    """Evidence and signals a join carries (before its sets are used)."""
    if not engine.config.fault_detector:
        return
    j = frame.body
    assert isinstance(j, Join)
    absorb(engine, j.proofs, j.accusations)
    det = engine.detector
    det.heard_from(frame.sender, engine.now)
    if engine.gather is not None:
        engine.gather.answered[frame.sender] = engine.now  # a fresh join (not stale)
    # A merge proposes an outsider that is alive: one we heard lately (a
    # churner proposing an absent node is judged as churn, as before).
    recent_s = engine.timing.consensus_timeout_s
    outsiders = set(j.proc) - set(j.fail) - set(engine.members)
    merging = any(
        not engine.banned(n) and det.heard_lately(n, engine.now, recent_s) for n in outsiders
    )
    det.churn.heard(frame.sender, j.cause, merging)
    blame = det.take_blame(frame.sender)
    if blame is not None and engine.now - blame.at <= engine.timing.consensus_timeout_s:
        suspect(engine, frame.sender, blame.signal)


def on_restart_by_join(engine: Engine, frame: Frame) -> None:
    """A member's join is about to restart our membership round."""
    if not engine.config.fault_detector:
        return
    ring = engine.ring
    j = frame.body
    assert isinstance(j, Join)
    det = engine.detector
    watch = det.tokens
    w = det.commit_watch
    since: float | None = None
    if engine.state is State.OPERATIONAL or (
        engine.state is State.RECOVERY and engine.pending is not None
    ):
        since = watch.last_seen_t if engine.tokens.hops.seen >= 0 else watch.ring_start_t
    elif engine.state is State.COMMIT and w is not None:
        # Waiting for the commit token since its last hop we saw: all
        # members time out together there, and only the first blamed.
        since = w.at
    if since is not None and (
        engine.now - since >= SILENT_TOKEN_FRACTION * engine.timing.token_timeout_s
    ):
        # The token has been silent nearly as long as our own timeout,
        # and another member's timeout went just before ours: blame
        # whom our own timeout would have. Only the first members to
        # time out did, which took a mute holder 6 rounds (8 s) to reach
        # f+1 accusers (Byzantine soak seed 1027), or never (a mute
        # representative, seed 1012).
        det.loss_blame = loss_blame(engine) or det.loss_blame
    if (
        engine.state is not State.OPERATIONAL
        or ring is None
        or frame.sender not in engine.members
        or engine.now - watch.last_seen_t >= engine.timing.slow_hold_s
        or _rekey_due(engine, frame.sender)
    ):
        return
    # It restarts membership while the token was just here: a member that
    # lost the token would have waited token_timeout_ms.
    outsiders = frozenset(j.proc) - set(j.fail) - set(engine.members)
    evicted = frozenset(n for n in outsiders if engine.banned(n))
    if not outsiders:
        # Whom to blame is decided when the round ends: the member that
        # started it, which the joins name (ChurnWatch).
        due = engine.detector.churn.open(frame.sender, j.cause, frozenset(engine.members))
        if due is not None:
            suspect(engine, due, "churn")
    elif not engine.detector.may_propose(
        engine.now, frame.sender, outsiders, engine.timing.merge_timeout_s
    ):
        # A correct member merges an outsider it hears at most once per
        # merge back-off, until the outsider is in a ring; more often is
        # churn, whether the outsider is evicted (a member that was down
        # during the eviction hears its traffic and proposes it; accused of
        # `phantom` for it in 0.6 s before this rule) or alive but never
        # merged (its joins are refused: join-phantom proposing a poisoned
        # member restarted the ring every 1.5 s, neither phantom nor churn,
        # Byzantine soak seeds 60683, 90137).
        suspect(engine, frame.sender, "churn")
    elif evicted != outsiders:
        # Proposing to add a node (a merge, a rejoin) is what a member that
        # heard an outsider must do; judged when the round ends: if we heard
        # none of the proposed nodes and none made it in, it was churn
        # ("phantom": it also cost everyone a consensus timeout). Nodes we
        # evicted are not judged so: our joins fail them at once.
        engine.detector.propose(
            frame.sender, outsiders - evicted, engine.now, engine.timing.consensus_timeout_s
        )


def _rekey_due(engine: Engine, sender: int) -> bool:
    """The representative restarts the ring once per rekey interval."""
    cfg = engine.config
    return (
        engine.ring is not None
        and sender == engine.ring.rep
        and cfg.rekey_interval_ms > 0
        and engine.now - engine.installed_at >= engine.timing.rekey_interval_s * REKEY_DUE_FRACTION
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
            accusations.extend(_accusers(engine, target))
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


def announce(engine: Engine, v: Verdict) -> None:
    """Tell the application of an eviction, once."""
    if not v.announced and v.target != engine.node_id:
        v.announced = True
        engine.emit(Evicted(v.target, v.reason, v.proof))


def on_install(engine: Engine, members: tuple[int, ...], view: str) -> None:
    """A regular view is installed: announce the evictions it carries out,
    readmit nodes whose cool-down is over."""
    det = engine.detector
    restarter = det.churn.take()
    if restarter is not None:
        suspect(engine, restarter, "churn")
    for sender, outsiders in sorted(det.take_proposals().items()):
        if sender in members and outsiders and outsiders.isdisjoint(members):
            suspect(engine, sender, "phantom")
    det.merged(members)
    due = det.take_announcements()
    for target, v in sorted(due.items(), key=lambda tv: tv[0]):
        if target not in members:
            announce(engine, v)
    for target in det.expired(engine.now):
        if target != engine.node_id:
            det.forgive(engine.now, target, engine.ring_seq_max)
    if det.take_rejoined():
        engine.emit(Rejoined(view))
