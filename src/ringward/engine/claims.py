"""Which fail claims of a membership round's joins a member takes.

Totem unions the fail sets of every join on trust. A Byzantine member that
lists a live correct node in its joins then keeps that node out of every
ring (the node forms a ring alone, merges back, and is failed again), and
the members that merge it back are blamed for the restarts (issue 16,
finding 10; simulator ``fail-live``). With the fault detector on (and
f >= 1, rings of 4 and more), a claim about a node this member heard lately
(any signed frame within a consensus timeout) and does not suspect itself
is taken only from f+1 claimants, one of them correct. A claimant it does
not follow never matches its sets, and its consensus timer fails it
(``claimers``, signal ``fail_claim``); members whose timer fired a moment
before, failing the same claimant, are spared (``spared``). A node nobody
hears is failed as in Totem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ringward.engine.engine import Engine
    from ringward.engine.membership import GatherState

__all__ = ["CLAIM_FRESH_FRACTION", "adopted", "claimers", "parts_ways", "spared"]

# A fail claim first seen less than this share of a consensus timeout before
# our own consensus timer fires is another member's timer that fired first
# (correct members' timers fire within milliseconds of each other); an older
# one about a node we hear, unsupported, keeps a live node out (claimers).
CLAIM_FRESH_FRACTION = 0.5


def adopted(engine: Engine, g: GatherState) -> set[int]:
    """The nodes that this round's joins claim failed and that we take
    (module docstring)."""
    claims = _by_node(g)
    if not engine.config.fault_detector or engine.detector.f == 0:
        return set(claims)
    return {x for x, by in claims.items() if x != engine.node_id and _taken(engine, x, by)}


def _by_node(g: GatherState) -> dict[int, set[int]]:
    """Node -> the candidates whose latest join of the round fails it."""
    claims: dict[int, set[int]] = {}
    for node, (_, fail, _) in g.joins.items():
        if node in g.fail:
            continue  # failed here: its claims count for nothing
        for x in fail:
            claims.setdefault(x, set()).add(node)
    return claims


def _taken(engine: Engine, node: int, claimants: set[int]) -> bool:
    """Whether claims that ``node`` failed are taken: f+1 claimants, or a
    node we have not heard lately, or one we suspect ourselves (a member
    that saw it withhold the commit, say, fails a live node for a reason
    the members that saw it too share)."""
    det = engine.detector
    return (
        not _heard_lately(engine, node) or len(claimants) > det.f or det.total(engine.now, node) > 0
    )


def claimers(engine: Engine, g: GatherState, silent: set[int]) -> set[int]:
    """The silent candidates whose join fails a node we do not, that we
    heard lately and that fewer than f+1 claim, a claim older than half a
    consensus timeout: they keep a live node out of the ring. A fresh claim
    is another member's consensus timer that fired just before ours."""
    if not engine.config.fault_detector or engine.detector.f == 0:
        return set()
    claims = _by_node(g)
    old = engine.now - CLAIM_FRESH_FRACTION * engine.timing.consensus_timeout_s
    out = set()
    for node in silent:
        joined = g.joins.get(node)
        if joined is not None and any(
            x not in g.fail
            and g.claimed_at.get((node, x), engine.now) <= old
            and not _taken(engine, x, claims.get(x, set()))
            for x in joined[1]
        ):
            out.add(node)
    return out


def spared(engine: Engine, g: GatherState, silent: set[int], failing: set[int]) -> set[int]:
    """Silent candidates whose join differs from ours only in failing some
    of the silent ones: their consensus timer fired first (with the fault
    detector on, such claims about nodes heard lately are not taken on
    receipt, so their joins did not match ours)."""
    if not engine.config.fault_detector or engine.detector.f == 0:
        return set()
    out = set()
    for node in silent - failing:
        joined = g.joins.get(node)
        if joined is not None and joined[0] == g.proc and g.fail <= joined[1] <= g.fail | silent:
            out.add(node)
    return out


def _heard_lately(engine: Engine, node: int) -> bool:
    heard = engine.now if node == engine.node_id else engine.detector.heard_at.get(node)
    return heard is not None and engine.now - heard <= engine.timing.consensus_timeout_s


def parts_ways(engine: Engine, g: GatherState, sender: int) -> bool:
    """Whether ``sender``'s claim that we failed makes us part ways with it:
    on trust as in Totem with f = 0, else with f+1 claimants (a single liar
    must not split us from the ring: the others fail it instead)."""
    det = engine.detector
    if not engine.config.fault_detector or det.f == 0:
        return True
    by = {n for n, (_, fail, _) in g.joins.items() if engine.node_id in fail} | {sender}
    return len(by - g.fail) > det.f
