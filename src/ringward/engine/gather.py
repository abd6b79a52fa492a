"""Membership rounds: gather, joins, consensus (Totem's gather state).

A round starts on token loss, a join or a foreign ring (``enter``); each node
sends a signed join with its ``proc`` and ``fail`` sets, merges the sets it
hears, and when every node of ``proc - fail`` has sent matching sets
(consensus) the representative, the lowest candidate, forms the ring
(recovery.start_commit). Joins older than what their sender already told us
(``_stale_join``) change nothing, and an outsider starts at most one round
per back-off period (:class:`MergeBackoff`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ringward.engine import accusations, evidence, faults, recovery, transition
from ringward.engine.config import MERGE_BACKOFF_MAX_S
from ringward.engine.membership import Agreed, GatherState, State
from ringward.engine.reasons import Drop, Note
from ringward.errors import WireError
from ringward.wire import Frame, Join, RingId, limits

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = [
    "MergeBackoff",
    "check_consensus",
    "enter",
    "foreign",
    "on_consensus_timer",
    "on_join_frame",
    "on_join_timer",
    "on_leave",
    "send_join",
]


class MergeBackoff:
    """Per outsider: the time before which it starts no membership round,
    and the next back-off (doubling up to MERGE_BACKOFF_MAX_S). Replayed old
    tokens or joins of a node that is gone then cost at most one failed round
    per back-off period, while a live foreign ring is still merged with,
    later if not sooner. Bounded by the roster."""

    def __init__(self, first_s: float) -> None:
        self._first_s = first_s
        self._until: dict[int, tuple[float, float]] = {}

    def allow(self, now: float, sender: int) -> bool:
        """Whether ``sender`` may start a round now; if so, the next time it
        may is one back-off later."""
        until, delay = self._until.get(sender, (0.0, self._first_s))
        if now < until:
            return False
        self._until[sender] = (now + delay, min(2 * delay, MERGE_BACKOFF_MAX_S))
        return True

    def forget(self, members: Iterable[int]) -> None:
        """Members of an installed ring start afresh."""
        for member in members:
            self._until.pop(member, None)

    def __len__(self) -> int:
        return len(self._until)


def enter(
    engine: Engine,
    now: float,
    *,
    reason: str,
    add: Sequence[int] = (),
    rejoin: bool = False,
    cause: int = 0,
) -> None:
    """Start (or widen) a membership round. ``rejoin``: the end of our own
    rejection (transition.rejoin), the only way out of REJECTED; ``cause``:
    the node whose join started it (0: our own reason)."""
    engine.now = now
    if engine.state is State.REJECTED and not rejoin:
        return
    if engine.state is State.GATHER and engine.gather is not None:
        if engine.gather.merge(add, ()):
            send_join(engine)
        return
    engine.notes[f"{Note.GATHER}:{reason}"] += 1  # counted, not an error: a reason to reconfigure
    died = _died_at(engine)
    transition.to(engine, State.GATHER)
    # Back from a failed COMMIT or RECOVERY, the previous round's sets
    # stand (Totem clears the fail set only on entering OPERATIONAL):
    # forgetting them would re-admit the nodes just failed and loop.
    kept = engine.gather
    engine.gather = GatherState(
        proc={engine.node_id, *engine.members, *add, *(kept.proc if kept else ())},
        fail=set(kept.fail) if kept else set(),
        ring_seq_max=engine.ring_seq_max,
        died_at=died,
        cause=cause,
    )
    if died is not None and kept is not None and kept.died_at == died:
        # The ring died at this member twice in a row, and its other
        # members are too few to evict it. The kept fail set would
        # otherwise re-form the same ring for good, never operational, so
        # never clearing the fail set nor merging with anyone it holds: a
        # correct node paired with a member that starves its successor (no
        # third member to relay the token) looped so (Byzantine soak seed
        # 2098). Failed, it is merged with later, once we are operational.
        engine.notes[Note.DIED_TWICE] += 1
        engine.gather.fail.add(died)
    engine.gather.fail.discard(engine.node_id)
    engine.gather.fail |= {n for n in engine.gather.proc if engine.banned(n)}
    transition.end_round(engine)
    engine.security.retire({engine.ring} if engine.ring else ())
    transition.reset_tokens(engine)
    engine.sendq.rewind()
    engine.cancel_timer("token_rtx", "commit_rtx", "token_hold", "link", "relay", "token_loss")
    send_join(engine)
    engine.set_timer("consensus", engine.timing.consensus_timeout_s)


def _died_at(engine: Engine) -> int | None:
    """Whom the ring being formed died at, if we leave COMMIT or RECOVERY
    because it died now (faults.on_token_loss set the blame just before),
    and if that ring is too small for its other members to evict it: in a
    larger one f+1 of them accuse it, and failing it instead would only
    make it an outsider that merges back and stops the next round too
    (tests/engine/test_commit_blame.py)."""
    blame, pending = engine.detector.loss_blame, engine.pending
    if engine.state not in (State.COMMIT, State.RECOVERY) or blame is None or pending is None:
        return None
    if blame.at != engine.now or blame.node == engine.node_id:
        return None
    others = set(pending.members) - {blame.node}
    return blame.node if len(others) < engine.detector.accusers_needed else None


def send_join(engine: Engine) -> None:
    g = engine.gather
    assert g is not None
    proofs, accused = accusations.join_evidence(engine)
    ring = engine.ring or RingId(engine.node_id, 0)
    held_s = engine.detector.load.join_hold_s(engine.ring_seq_max)
    frames_held = len(engine.store.frames) if engine.store else 0
    where = evidence.ReportPosition(ring, "join", engine.ring_seq_max)
    load = faults.load_report(engine, held_s, frames_held, where)
    body = Join(
        engine.ring_seq_max,
        tuple(sorted(g.proc)),
        tuple(sorted(g.fail)),
        proofs,
        accused,
        g.cause,
        load,
    )
    try:
        raw = engine.emit_signed(ring, body)
    except WireError:
        # Evidence past the budget's estimate: the sets matter more.
        engine.drops[Drop.JOIN_EVIDENCE_DROPPED] += 1
        body = dataclasses.replace(body, proofs=(), accusations=())
        raw = engine.emit_signed(ring, body)
    frame = Frame(engine.cluster_id, engine.node_id, ring, body, raw[-limits.SIGNATURE_BYTES :])
    # Not judged here (a self-conviction would end the round we are
    # building): the others' proof of it reaches us.
    g.joins[engine.node_id] = (frozenset(g.proc), frozenset(g.fail), frame)
    engine.set_timer("join", engine.timing.join_timeout_s)


def on_join_frame(engine: Engine, frame: Frame, raw: bytes) -> None:
    j = frame.body
    assert isinstance(j, Join)
    sender = frame.sender
    if engine.banned(sender) or sender not in j.proc:
        if sender not in j.proc:
            on_leave(engine, sender, j)
        else:
            # Evicted, its cool-down not over: its joins start nothing.
            engine.drops[Drop.JOIN_BANNED] += 1
        return
    if _stale_join(engine, sender, j):
        # Sent before something we know it did since: a delayed or
        # replayed join. Taken, it would bring back the sets of an
        # earlier round (an evicted node in proc: a round that waits a
        # consensus timeout for it) and hide the sender's latest join.
        engine.drops[Drop.STALE_JOIN] += 1
        return
    accusations.on_join(engine, frame)
    faults.join_load(engine, frame)
    if engine.state is State.REJECTED or sender in engine.detector.verdicts:
        return  # its evidence convicted us, or it convicted itself
    engine.ring_seq_max = max(engine.ring_seq_max, j.ring_seq)
    if engine.state is not State.GATHER:
        members = engine.pending.members if engine.pending else engine.members
        failed = engine.gather.fail if engine.gather is not None else set()
        if engine.node_id in j.fail or engine.node_id not in j.proc or sender in failed:
            # It is not trying to join us (it failed us, or does not know
            # us yet): restarting our membership would only start a loop
            # of rings that it leaves again. Our ring traffic will reach
            # it as foreign traffic, and the merge starts from there.
            engine.drops[Drop.JOIN_NOT_FOR_US] += 1
            return
        if sender not in members and not engine.merge_backoff.allow(engine.now, sender):
            # An outsider's join (perhaps a replayed one of a node that
            # is gone) restarts membership once per back-off period.
            engine.drops[Drop.JOIN_BACKOFF] += 1
            return
        accusations.on_restart_by_join(engine, frame)
        enter(engine, engine.now, reason="join", add=(sender,), cause=sender)
    g = engine.gather
    assert g is not None
    if sender in g.fail:
        engine.drops[Drop.JOIN_FROM_FAILED] += 1
        return
    # A member whose wait for the commit ran out before ours fails the
    # representative: blame it as our own timer would (as for token loss,
    # accusations.SILENT_TOKEN_FRACTION), or only the first to time out
    # ever did, and the saboteur never reached f+1 accusers.
    # Failing the representative changes our sets: announced below, with
    # a fresh consensus period, like any other change.
    changed = _commit_overdue(engine, accusations.SILENT_TOKEN_FRACTION)
    if engine.node_id in j.fail:
        # It considers us failed: part ways; the merge comes later.
        g.fail.add(sender)
        changed = True
    else:
        g.joins[sender] = (frozenset(j.proc), frozenset(j.fail), frame)
        # Fail sets are unioned on trust, as in Totem: refusing claims
        # about nodes we still hear was tried and split partitioned
        # rings into singletons that never re-merged (SECURITY.md: a
        # Byzantine member can keep a live node out of one ring).
        changed |= g.merge(j.proc, j.fail) | _fail_banned(engine, j.proc)
    g.ring_seq_max = max(g.ring_seq_max, j.ring_seq)
    if changed:
        # New sets: everyone gets a full consensus period to agree to
        # them (Totem re-enters gather), or the first timer to fire
        # would fail nodes whose matching joins are still in flight.
        engine.set_timer("consensus", engine.timing.consensus_timeout_s)
        send_join(engine)
    # Consensus is only ever reached on hearing from others or on the
    # consensus timer: a node that just started must not form a ring of
    # one before anyone could answer.
    check_consensus(engine)


def _fail_banned(engine: Engine, proposed: Iterable[int]) -> bool:
    """A node we evicted, proposed by a member that has not learnt of it
    yet: fail it, or the round waits for its join until the consensus
    timer fails it anyway. True if our fail set grew."""
    g = engine.gather
    assert g is not None
    banned = {n for n in proposed if n not in g.fail and engine.banned(n)}
    g.fail |= banned
    return bool(banned)


def _stale_join(engine: Engine, sender: int, j: Join) -> bool:
    """Whether ``j`` is older than what ``sender`` already told us.

    A member of a ring carries at least that ring's seq in every join it
    sends after installing it (or after committing to it); within one
    round a node's sets only grow. So a join of a member of our ring (or
    of the ring we committed to) with a lower seq, or one that is behind
    the sender's latest join of this round (lower seq, or strictly
    smaller sets), was sent earlier: the network delayed it or someone
    replayed it (a replay proves nothing, but must change nothing).

    The same holds for any node, member or not: a node's ring seq is
    persisted before anything carrying it is sent (api.py) and never
    falls, so a join below the highest ring seq the node ever signed
    (its joins, or the ring id of any signed frame of it) is older than
    that frame. This is what catches a replayed join of an outsider."""
    ring, members = engine.pending or (engine.ring, engine.members)
    if ring is not None and sender in members and j.ring_seq < ring.seq:
        return True
    if j.ring_seq < engine.seq_heard.get(sender, 0):
        return True
    g = engine.gather
    got = g.joins.get(sender) if g is not None else None
    if got is None:
        return False
    old = got[2].body
    assert isinstance(old, Join)
    if j.ring_seq != old.ring_seq:
        return j.ring_seq < old.ring_seq
    proc, fail = frozenset(j.proc), frozenset(j.fail)
    return proc <= got[0] and fail <= got[1] and (proc, fail) != (got[0], got[1])


def on_leave(engine: Engine, sender: int, j: Join) -> None:
    """A member announced it leaves (a join without itself in proc,
    signed by it, for our current ring): fail it now. A replayed leave
    of an earlier ring is stale."""
    ring = engine.ring
    if ring is None or sender not in engine.members or j.ring_seq < ring.seq:
        engine.drops[Drop.STALE_LEAVE] += 1
        return
    if engine.state is State.GATHER and engine.gather is not None:
        if sender not in engine.gather.fail:
            engine.gather.fail.add(sender)
            engine.set_timer("consensus", engine.timing.consensus_timeout_s)
            send_join(engine)
            check_consensus(engine)
        return
    enter(engine, engine.now, reason="leave")
    if engine.gather is not None:
        engine.gather.fail.add(sender)
        send_join(engine)


def check_consensus(engine: Engine) -> None:
    g = engine.gather
    if g is None or engine.state is not State.GATHER or not g.consensus():
        return
    if g.candidates()[0] == engine.node_id:
        recovery.start_commit(engine)
        return
    sets = (frozenset(g.proc), frozenset(g.fail))
    if g.agreed is None or (g.agreed.proc, g.agreed.fail) != sets:
        g.agreed = Agreed(*sets, engine.now)


def on_join_timer(engine: Engine) -> None:
    if engine.state is State.GATHER:
        send_join(engine)


def on_consensus_timer(engine: Engine) -> None:
    if engine.state is not State.GATHER or engine.gather is None:
        return
    engine.set_timer("consensus", engine.timing.consensus_timeout_s)
    if _commit_overdue(engine, 1.0):
        # Nobody has seen our new sets yet: failing everyone whose join
        # does not match them would leave each member alone (Byzantine
        # soak seed 2098). They get a consensus period to answer.
        send_join(engine)
        return
    silent = engine.gather.silent() - {engine.node_id}
    engine.gather.fail |= silent
    send_join(engine)
    check_consensus(engine)


def _commit_overdue(engine: Engine, fraction: float) -> bool:
    """Every candidate agreed a consensus timeout ago and no hop of the
    round's commit token has been seen since: the representative, alive
    (its join is in the agreement), did not start it. Blamed
    (``commit_withheld``) and failed, so the next round forms
    under the next representative (it merges back later). A forward to the
    second member is broadcast, so one hop seen anywhere shows the round
    started (recovery.observe_commit). ``fraction``: of the consensus
    timeout that must have passed since the agreement. True if it failed
    the representative (our sets changed)."""
    g = engine.gather
    assert g is not None
    a = g.agreed
    if (
        a is None
        or (a.proc, a.fail) != (frozenset(g.proc), frozenset(g.fail))
        or engine.now - a.at < fraction * engine.timing.consensus_timeout_s
    ):
        return False
    w = engine.detector.commit_watch
    members = g.candidates()
    if (
        w is not None
        and w.members == tuple(members)
        and w.at >= a.at - engine.timing.consensus_timeout_s
    ):
        # The round started (its first hop may beat the last join we
        # needed); a stall past there is recovery._watch's to blame. A
        # round of other members (one we left for a merge) shows nothing.
        return False
    rep = members[0]
    g.agreed = None
    accusations.suspect(engine, rep, "commit_withheld")
    g.fail.add(rep)
    return True


def foreign(engine: Engine, frame: Frame) -> None:
    """A signed token of a ring that is not ours: a node outside our ring
    is alive (partition healed, restart): merge with it — at most once
    per back-off period per sender, doubling up to MERGE_BACKOFF_MAX_S,
    so replayed old tokens cannot keep the ring reconfiguring."""
    sender = frame.sender
    if engine.banned(sender):
        engine.drops[Drop.FOREIGN_BANNED] += 1
        return
    engine.detector.heard_from(sender, engine.now)
    g = engine.gather
    if (
        engine.state is State.GATHER
        and g is not None
        and sender not in g.proc | g.fail
        and engine.merge_backoff.allow(engine.now, sender)
    ):
        # Gathering (a node that just started, say) and a ring is out
        # there: propose to include its members rather than wait for the
        # consensus timer, form a ring alone, and merge afterwards.
        g.merge((sender,), ())
        engine.set_timer("consensus", engine.timing.consensus_timeout_s)
        send_join(engine)
        return
    if (
        engine.state is not State.OPERATIONAL
        or sender in engine.members
        or not engine.merge_backoff.allow(engine.now, sender)
    ):
        engine.drops[Drop.FOREIGN_RING] += 1
        return
    enter(engine, engine.now, reason="foreign", add=(sender,))
