"""Whole-log checks over the replayed visits: guarantees 1, 4 and 5.

Theory of operation
-------------------
All of these compare what *different* nodes did in one configuration, so they
run after the replay, grouped by view id. Each is linear in the number of
deliveries:

* Total order (1): per configuration, every member's delivery sequence must
  be a prefix of the longest one; one slice comparison per member instead of
  all pairs. Across configurations, the per-node orders must admit one common
  total order: the union of "delivered right before" edges must be acyclic
  (Kahn's algorithm). Once the prefix check passed for a view, the longest
  sequence stands for all of them, so only its chain plus one edge per view
  change enters the graph.
* Virtual synchrony (4): nodes whose consecutive views are the same pair
  (C, C') delivered equal sets in C; every message is delivered in one home
  regular configuration (or a transitional one that follows it).
* Safe delivery (5): each safe delivery in C is looked up in every member's
  deliveries in C (and in the transitional configuration after C, for a
  regular C).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from itertools import pairwise

from ringward.eventlog import DeliverEvent
from ringward.sim._replay import Replay, Visit
from ringward.sim.report import Collector

__all__ = ["check_safe", "check_total_order", "check_virtual_synchrony"]


def _visits_by_view(rp: Replay) -> dict[str, list[Visit]]:
    groups: dict[str, list[Visit]] = defaultdict(list)
    for lives in rp.lives.values():
        for life in lives:
            for visit in life.visits:
                groups[visit.view.view].append(visit)
    return groups


def _ids(visit: Visit) -> list[str]:
    return [d.id for d in visit.delivered]


def _prefix(view: str, visits: list[Visit], out: Collector) -> bool:
    """Report members whose sequence is not a prefix of the longest; True if all are."""
    longest = max(visits, key=lambda v: len(v.delivered))
    reference = _ids(longest)
    ok = True
    for visit in visits:
        if visit is longest or not visit.delivered:
            continue
        ids = _ids(visit)
        if reference[: len(ids)] == ids:
            continue
        ok = False
        at = next(i for i, (a, b) in enumerate(zip(reference, ids, strict=False)) if a != b)
        mine, theirs = visit.delivered[at], longest.delivered[at]
        out.add(
            1,
            "prefix_mismatch",
            f"view {view}: delivery #{at + 1} is {mine.id} at node {mine.node} "
            f"but {theirs.id} at node {theirs.node}",
            (theirs, mine),
        )
    if ok:
        seqs = [d.seq for d in longest.delivered]
        for visit in visits:
            n = len(visit.delivered)
            if visit is not longest and n and seqs[:n] != [d.seq for d in visit.delivered]:
                at = next(i for i in range(n) if seqs[i] != visit.delivered[i].seq)
                mine, theirs = visit.delivered[at], longest.delivered[at]
                out.add(
                    0,
                    "seq_disagreement",
                    f"view {view}: {mine.id} has seq {mine.seq} at node {mine.node}, "
                    f"{theirs.seq} at node {theirs.node}",
                    (theirs, mine),
                )
    return ok


def check_total_order(rp: Replay, out: Collector) -> None:
    """Guarantee 1: per-view prefix property, then one global order."""
    edges: dict[str, set[str]] = defaultdict(set)
    for view, visits in _visits_by_view(rp).items():
        chains = [max(visits, key=lambda v: len(v.delivered))]
        if not _prefix(view, visits, out):
            chains = visits  # already reported; keep every order for the graph
        for visit in chains:
            _add_chain(edges, (d.id for d in visit.delivered))
    for lives in rp.lives.values():
        for life in lives:
            # The last delivery of one visit precedes the first of the next.
            tails = [v.delivered for v in life.visits if v.delivered]
            for before, after in pairwise(tails):
                edges[before[-1].id].add(after[0].id)
    cycle = _find_cycle(edges)
    if cycle:
        shown = " -> ".join(cycle[:6]) + (" -> ..." if len(cycle) > 6 else "")
        out.add(
            1,
            "order_cycle",
            f"nodes' delivery orders admit no common total order: {shown} -> {cycle[0]}",
            _first_deliveries(rp, cycle),
        )


def _add_chain(edges: dict[str, set[str]], ids: Iterable[str]) -> None:
    previous: str | None = None
    for mid in ids:
        if previous is not None:
            edges[previous].add(mid)
        previous = mid


def _find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """Kahn's algorithm; on failure, walk predecessors inside the remainder."""
    indegree: dict[str, int] = defaultdict(int)
    for targets in edges.values():
        for target in targets:
            indegree[target] += 1
    ready = deque(v for v in edges if indegree[v] == 0)
    removed = 0
    while ready:
        v = ready.popleft()
        removed += 1
        for target in edges.get(v, ()):
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    left = {v for v, n in indegree.items() if n > 0}
    if not left:
        return []
    # Every vertex left has a predecessor left: walking back must loop.
    preds: dict[str, str] = {}
    for source, targets in edges.items():
        if source in left:
            for target in targets:
                if target in left:
                    preds.setdefault(target, source)
    walk: list[str] = []
    seen: dict[str, int] = {}
    v = next(iter(sorted(left)))
    while v not in seen:
        seen[v] = len(walk)
        walk.append(v)
        v = preds[v]
    return list(reversed(walk[seen[v] :]))


def _first_deliveries(rp: Replay, ids: list[str]) -> list[DeliverEvent]:
    wanted = set(ids[:4])
    found: dict[str, DeliverEvent] = {}
    for lives in rp.lives.values():
        for life in lives:
            for visit in life.visits:
                for d in visit.delivered:
                    if d.id in wanted:
                        found.setdefault(d.id, d)
    return [found[i] for i in ids[:4] if i in found]


def check_virtual_synchrony(rp: Replay, out: Collector) -> None:
    """Guarantee 4: equal sets for equal view transitions; one home per message."""
    moves: dict[tuple[str, str], list[Visit]] = defaultdict(list)
    home_of: dict[str, tuple[str, DeliverEvent]] = {}
    for lives in rp.lives.values():
        for life in lives:
            for visit in life.visits:
                if visit.next_view is not None:
                    moves[(visit.view.view, visit.next_view.view.view)].append(visit)
                if visit.home is not None:
                    _check_home(visit, home_of, out)
    for (old, new), visits in moves.items():
        reference = {d.id for d in visits[0].delivered}
        for visit in visits[1:]:
            mine = {d.id for d in visit.delivered}
            if mine == reference:
                continue
            extra = sorted(mine - reference)[:3]
            missing = sorted(reference - mine)[:3]
            out.add(
                4,
                "unequal_sets",
                f"nodes {visits[0].view.node} and {visit.view.node} both move {old} -> {new}; "
                f"in {old} only {visit.view.node} delivered {extra}, "
                f"only {visits[0].view.node} delivered {missing}",
                (visits[0].view, visit.view),
            )


def _check_home(visit: Visit, home_of: dict[str, tuple[str, DeliverEvent]], out: Collector) -> None:
    assert visit.home is not None
    home = visit.home.view
    for d in visit.delivered:
        first = home_of.setdefault(d.id, (home, d))
        if first[0] != home:
            out.add(
                4,
                "delivered_in_two_configurations",
                f"{d.id} is delivered in configuration {first[0]} at node {first[1].node} "
                f"but in {home} (via {d.view}) at node {d.node}",
                (first[1], d),
            )


def check_safe(rp: Replay, out: Collector, *, converge: bool) -> None:
    """Guarantee 5: a safe delivery in C reached every non-crashed member of C."""
    cover: dict[int, set[str]] = {}  # id(visit) -> ids, built on first need
    ever: dict[int, set[str]] = {}  # node -> every id it delivered
    judged: set[tuple[str, str]] = set()
    crashed_ever = {n for n, lives in rp.lives.items() if any(life.crashed for life in lives)}
    for lives in rp.lives.values():
        for life in lives:
            for visit in life.visits:
                for d in visit.delivered:
                    if d.safe and (visit.view.view, d.id) not in judged:
                        judged.add((visit.view.view, d.id))
                        _safe_one(
                            rp,
                            visit,
                            d,
                            cover=cover,
                            ever=ever,
                            crashed=crashed_ever,
                            converge=converge,
                            out=out,
                        )


def _ever(rp: Replay, node: int, ever: dict[int, set[str]]) -> set[str]:
    """Every id ``node`` delivered, in any view (cached in ``ever``)."""
    ids = ever.get(node)
    if ids is None:
        ids = ever[node] = set(rp.delivered_by(node))
    return ids


def _covered(visit: Visit, cover: dict[int, set[str]]) -> set[str]:
    key = id(visit)
    ids = cover.get(key)
    if ids is None:
        ids = {d.id for d in visit.delivered}
        cover[key] = ids
    return ids


def _safe_one(
    rp: Replay,
    visit: Visit,
    d: DeliverEvent,
    *,
    cover: dict[int, set[str]],
    ever: dict[int, set[str]],
    crashed: set[int],
    converge: bool,
    out: Collector,
) -> None:
    view = visit.view
    for q in view.members:
        if q in rp.byzantine:
            continue
        theirs = rp.visit_of.get((q, view.view))
        if theirs is None and view.kind == "transitional" and d.id in _ever(rp, q, ever):
            # A transitional configuration is named by the members that
            # recovered the old ring together; one that failed to complete
            # the recovery (paused, cut off) never installs it, but it did
            # receive m — recovery ends only once every member holds every
            # frame — and delivers m in its own transitional configuration.
            continue
        if theirs is None:
            # Safe in C needs q's acknowledgement in C, which q can give only
            # after installing C: excused only by a crash (or a cut log).
            if q not in crashed and converge:
                out.add(
                    5,
                    "safe_member_missing",
                    f"{d.id} delivered safe in {view.view} by {d.node}; "
                    f"member {q} never installed {view.view}",
                    (view, d),
                )
            continue
        spans = [theirs]
        after = theirs.next_view
        if view.kind == "regular" and after is not None and after.view.kind == "transitional":
            spans.append(after)
        if any(d.id in _covered(s, cover) for s in spans):
            continue
        last = spans[-1]
        if any(s.crashed for s in spans) or (last.open_at_end and not converge):
            continue  # crashed before it had to deliver, or may still deliver
        out.add(
            5,
            "safe_not_delivered",
            f"{d.id} delivered safe in {view.view} by node {d.node} "
            f"but never by member {q} (in {view.view} or its transitional successor)",
            (d, theirs.view),
        )
