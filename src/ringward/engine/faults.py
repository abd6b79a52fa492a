"""The fault detector inside the engine: what tokens show.

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
* Unprovable signals (a broken link, a slow hold, a withheld retransmission,
  a token lost at a member's turn) raise the peer's score
  (engine/accusations.py); a proof is acted on by engine/verdicts.py.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ringward.engine import accusations, evidence, verdicts
from ringward.engine.config import MS_PER_S
from ringward.engine.membership import State
from ringward.engine.ringstore import RingStore
from ringward.wire import Frame, Join, LoadReport, Token

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "check_transition",
    "join_load",
    "late_token",
    "link_broken",
    "load_report",
    "observe_token",
    "on_token_loss",
    "own_token",
    "recovery_junk",
    "recovery_share",
]

U32_MAX = 0xFFFF_FFFF
# Tokens remembered per hop for proofs, as a multiple of the ring size.
ROTATIONS_KEPT = 2


def observe_token(
    engine: Engine, frame: Frame, raw: bytes, members: tuple[int, ...], store: RingStore
) -> bool:
    """Check a verified token of our ring; False when it must not be used
    (it convicted its maker)."""
    if not engine.config.fault_detector:
        return True
    tk = frame.body
    assert isinstance(tk, Token)
    watch = engine.detector.tokens
    seen = watch.raw_at.get(tk.hop)
    broken = _broken_rule(engine, frame, raw, members, seen)
    if broken is not None:
        verdicts.convict(engine, frame.sender, *broken)
        return False
    if seen is not None:
        return True  # a copy of a token we have
    fresh = tk.hop > engine.tokens.hops.seen
    _remember(engine, tk.hop, raw, frame, len(members))
    # Its load report first: a visit slow because the maker says it is
    # overloaded is judged as overload (detector.defer).
    check_load(engine, frame)
    before = watch.raw_at.get(tk.hop - 1)
    if before is not None and engine.digest(before[0]) == tk.prev:
        prev = before[1].body
        assert isinstance(prev, Token)
        _observe_visit(engine, frame, prev, watch.seen_at[tk.hop - 1], fresh, store)
    elif tk.hop == 1 and fresh:
        _observe_first_visit(engine, frame)
    # A link that does not match is fetched by engine/chain.py.
    accusations.review_accusations(engine)
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
    rule = evidence.transition_rule(before, tk, frame.sender, engine.config)
    if rule is not None:
        verdicts.convict(engine, frame.sender, f"rule:{rule}", (prev, frame))
    elif engine.state is State.RECOVERY:
        recovery_share(engine, frame.sender, tk)


def recovery_share(engine: Engine, maker: int, tk: Token) -> None:
    """Frames ``maker`` listed in the linked tokens of the ring we recover
    into, against what its recovery can need (recovery.recovery_allowance):
    recovery ends after two quiet rotations, so a member that keeps adding
    frames would hold every member in recovery. Each member sees the same
    linked chain, so all suspect it together (f+1 accusers at once)."""
    if engine.detector.tokens.recovery_listed_past(maker, len(tk.frames)):
        accusations.suspect(engine, maker, "recovery_flood")


def recovery_junk(engine: Engine, pusher: int) -> None:
    """``pusher`` re-broadcast, in a frame it signed, an old-ring item no
    correct member sends (delivery._absorb): every member of its
    transitional set unpacks the same stream, so all suspect it at once."""
    if engine.config.fault_detector and pusher != engine.node_id:
        accusations.suspect(engine, pusher, "recovery_junk")


def link_broken(engine: Engine, maker: int) -> None:
    """Nobody could produce the token ``maker``'s token links to."""
    if engine.config.fault_detector:
        accusations.suspect(engine, maker, "broken_link")


def _remember(engine: Engine, hop: int, raw: bytes, frame: Frame, n: int) -> None:
    newest = engine.tokens.hops.seen
    engine.detector.tokens.remember(hop, raw, frame, engine.now, newest, ROTATIONS_KEPT * n)


def _observe_first_visit(engine: Engine, frame: Frame) -> None:
    """The representative's first token of a ring: its visit began when the
    commit token came back to it (the last forward, broadcast like every
    forward). Unjudged, a representative that held it nearly a token
    timeout, then restarted the ring as lost, stalled it for good beside a
    member that drops the token: the others had seen the token just before
    and blamed nobody (Byzantine soak seed 130153)."""
    w = engine.detector.commit_watch
    if (
        w is not None
        and w.ring == frame.ring
        and w.hop == 2 * len(w.members)
        and engine.now - w.at > engine.timing.slow_hold_s
    ):
        accusations.suspect(engine, frame.sender, "slow_hold")


def _observe_visit(
    engine: Engine, frame: Frame, prev: Token, prev_at: float, fresh: bool, store: RingStore
) -> None:
    """Unprovable signals from one visit of ``frame.sender``."""
    tk = frame.body
    assert isinstance(tk, Token)
    cfg, sender = engine.config, frame.sender
    if fresh and engine.now - prev_at > engine.timing.slow_hold_s:
        accusations.suspect(engine, sender, "slow_hold")
    # Requests for its own frames it passed on unserved: with at most
    # max_messages requests a correct originator serves every one of its own
    # and takes it out of the list, so both signed tokens show the fault and
    # no loss can cause it. A request taken out whose copy then never
    # reaches us is not scored: the copy may be lost on the way, and the
    # fallback (engine/token.py, RTR_FALLBACK_VISITS) lets any holder serve
    # a request the originator ignores, so a withholder delays, never stalls.
    withheld = False
    if 0 < len(prev.rtr) <= cfg.max_messages:
        still = set(tk.rtr)
        for seq in prev.rtr:
            item = store.frames.get(seq)
            if item is not None and item.frame.sender == sender and seq in still:
                withheld = True
    if withheld:
        accusations.suspect(engine, sender, "withhold")


def load_report(
    engine: Engine, held_s: float, frames_held: int, position: evidence.ReportPosition
) -> LoadReport:
    """What this node signs about its own pressure (a token's or a join's
    ``load``) at ``position``: ``held_s`` as ``hold_ms``, its queues, its
    store's fill, and how many of its own last 2k - 1 reports were over the
    limits (``recent_over``)."""
    cfg = engine.config
    report = LoadReport(
        backlog=min(U32_MAX, len(engine.sendq)),
        rx_queue=min(U32_MAX, engine.detector.load.queue),
        hold_ms=min(U32_MAX, max(0, int(held_s * MS_PER_S))),
        memory_permille=min(0xFFFF, frames_held * 1000 // cfg.receive_window_frames_max),
    )
    kept = 2 * cfg.overload_reports - 1
    recent = engine.detector.load.own_over(position, evidence.overloaded(report, cfg), kept)
    return dataclasses.replace(report, recent_over=recent)


def join_load(engine: Engine, frame: Frame) -> None:
    """A signed join's load report (ours too): judged like a token's. A
    member so slow that every token and commit dies at it sends no token,
    but it answers membership rounds: before, nothing it signed said it was
    overloaded, and it was evicted by accusation instead (sim --nodes 7
    --byzantine 7:overload, seed 8: no ring for 3.4 s, never evicted)."""
    if engine.config.fault_detector:
        check_load(engine, frame)


def check_load(engine: Engine, frame: Frame) -> None:
    """Sustained overload: over the limits in ``overload_reports`` of the
    maker's last ``2 * overload_reports - 1`` reports we saw, one per
    position (a token's hop; a join's ``ring_seq``, one membership round:
    the joins it re-sends in a round count once, as the worst of them).

    Not "in a row": an overloaded node makes tokens get lost, each loss ends
    the ring, and the first visit of a new ring finds little queued, so its
    short hold would restart a run that the next long one continues (4
    nodes, seed 2, slowed 50x for 4 s: over, over, short, over, over - never
    three in a row). A majority of the recent visits is still "sustained": a
    healthy node's single long pause is forgotten within a few visits.
    """
    cfg, sender = engine.config, frame.sender
    body = frame.body
    assert isinstance(body, (Token, Join))
    runs = engine.detector.overload_run
    recent = runs.setdefault(sender, [])
    entry = (frame, evidence.overloaded(body.load, cfg))
    where = evidence.report_position(frame)
    same = [i for i, (f, _) in enumerate(recent) if evidence.report_position(f) == where]
    if same:
        # A copy, or a later join of the same round: kept if worse, and
        # among reports over the limits, one a proof can carry in a join.
        i = same[0]
        if not _worse(entry, recent[i]):
            return
        recent[i] = entry
    else:
        recent.append(entry)
        del recent[: -(2 * cfg.overload_reports - 1)]
    over = [f for f, o in recent if o]
    if not over:
        del runs[sender]  # keep only members worth watching
        return
    statements = evidence.overload_statements(over, cfg)
    if statements is not None:
        verdicts.convict(engine, sender, "overload", statements)


def _worse(new: tuple[Frame, bool], old: tuple[Frame, bool]) -> bool:
    if new[1] != old[1]:
        return new[1]
    return new[1] and evidence.embeds(old[0]) and not evidence.embeds(new[0])


def late_token(engine: Engine, frame: Frame) -> None:
    """A signed token of the ring we just left, arriving after its loss
    started a membership round: its load report still counts. An overloaded
    holder's token is late because of the overload, so its late report is
    the one that shows it (4 nodes, seed 2: two of the three that convict)."""
    if engine.config.fault_detector:
        check_load(engine, frame)


def own_token(engine: Engine, frame: Frame, raw: bytes, members: tuple[int, ...]) -> None:
    """A token this node just made: remembered like any other (so it can be
    served and checked against), and its own load report judged by the same
    rule everyone else applies to it."""
    if not engine.config.fault_detector:
        return
    tk = frame.body
    assert isinstance(tk, Token)
    _remember(engine, tk.hop, raw, frame, len(members))
    check_load(engine, frame)


def on_token_loss(engine: Engine) -> None:
    """The token died: remember whose visit it died at; that member is
    scored only if it then answers the membership round (a crashed member is
    simply failed, not suspected)."""
    det = engine.detector
    det.loss_blame = accusations.loss_blame(engine) or det.loss_blame
