"""Fail claims: which nodes a membership round leaves out.

Totem unions every fail set it hears, so one Byzantine member listing a
live node in its joins keeps that node out of every ring. Here each join
names, apart from the fail set it proposes, the nodes its sender fails on
its own account (``Join.claims``), and a node's fail set is computed from
the claims it holds (docs/protocol.md, "Fail claims"):

* a node nobody lets us hear (no join of it, nor a frame of it, within a
  consensus timeout) is left out on one claim, as in Totem: a crash or a
  partition, seen by whoever is left;
* a node we still hear is left out when f+1 distinct members claim it:
  one liar, or f of them, leave nobody out, and a member whose sets keep
  disagreeing is claimed by every other member at its consensus timeout;
* a representative whose commit we saw reach its first holder and stop,
  that holder claiming it afterwards (a sealed key that does not open is
  what only that member can see), is claimed by us too: the f+1 who saw
  it leave it out;
* what we hold a reason of our own for (a verdict, a leave, a ring that
  died at the node twice, a commit we refused) is left out by us at once
  (``GatherState.local``), and claimed for the others to count.

Claims only grow within a round, so members holding the same joins compute
the same fail set. A member left out by f+1 claims parts ways with every
member whose fail set holds it and forms its own ring.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ringward.wire import Frame, Join

if TYPE_CHECKING:
    from ringward.engine.engine import Engine

__all__ = ["claim", "note_claims", "refresh"]


def claim(engine: Engine, nodes: Iterable[int], *, local: bool = False) -> bool:
    """Fail ``nodes`` on our own account (``local``: whatever the others
    claim). True if our claims grew."""
    g = engine.gather
    assert g is not None
    new = {n for n in nodes if n != engine.node_id} - g.claims
    g.claims |= new
    if local:
        g.local |= {n for n in nodes if n != engine.node_id}
    return bool(new)


def note_claims(engine: Engine, frame: Frame) -> None:
    """Before ``frame`` (a join) replaces its sender's latest: when we first
    saw the sender claim each node this round (a resend or a replay of a
    join we hold adds nothing)."""
    g = engine.gather
    assert g is not None
    j = frame.body
    assert isinstance(j, Join)
    for node in j.claims:
        g.claimed_at.setdefault((frame.sender, node), engine.now)


def _refused(engine: Engine) -> set[int]:
    """The representative whose commit we saw reach its first holder (the
    forward to it is broadcast) and go no further, if that holder claimed
    it only afterwards: its sealed key did not open, which only it can see.
    We claim it then (one claim, counted like any other)."""
    g = engine.gather
    assert g is not None
    w = engine.detector.commit_watch
    if w is None or w.hop != 1 or len(w.members) < 2:
        return set()
    if engine.ring is not None and w.ring.seq <= engine.ring.seq:
        return set()
    rep, first = w.members[0], w.members[1]
    # A holder that took the commit sends no join until the round is over.
    return {rep} if g.claimed_at.get((first, rep), 0.0) > w.at else set()


def refresh(engine: Engine) -> bool:
    """Recompute our fail set from the claims we hold; True if it changed."""
    g = engine.gather
    assert g is not None
    me = engine.node_id
    claimants: dict[int, set[int]] = {}
    for sender, (_, _, frame) in g.joins.items():
        body = frame.body
        if sender == me or not isinstance(body, Join) or engine.banned(sender):
            continue
        for node in body.claims:
            claimants.setdefault(node, set()).add(sender)
    needed = engine.detector.f + 1
    recent_s = engine.timing.consensus_timeout_s
    # We saw the refusal: claimed, so that f+1 who saw it leave the
    # representative out, and members that missed the commit's forward
    # count the same claims rather than part ways with us.
    g.claims |= _refused(engine) - {me}
    for node in g.claims:
        claimants.setdefault(node, set()).add(me)
    fail = set(g.local)
    for node, who in claimants.items():
        if len(who) >= needed or not engine.detector.heard_lately(node, engine.now, recent_s):
            fail.add(node)
    others = g.proc - fail - {me}
    shunned = bool(others) and all(
        (got := g.joins.get(n)) is not None and me in got[1] for n in others
    )
    if len(claimants.get(me, ())) >= needed or shunned:
        # Left out (by f+1 claims, or by every other candidate): part ways
        # with the members that leave us out; the merge comes later.
        fail |= {n for n, (_, failed, _) in g.joins.items() if me in failed}
    fail.discard(me)
    if fail == g.fail:
        return False
    g.fail = fail
    return True
