"""Combine the demo's per-process event logs and check the guarantees.

Each ``ringward node`` process writes its own log with roster node ids and
``t`` in seconds since *that process* started (runtime/eventlog.py). The
checker reads one log in which each node's lines are in the node's order
(different nodes may interleave) and ``t`` never decreases per node. So the
merge:

* shifts every file's ``t`` by the process's start time on the parent's
  monotonic clock, relative to the demo's start. The node's own clock starts
  a little after the spawn, so shifted times are slightly early but, per
  node, still ordered: an incarnation's events lie between its spawn and its
  kill;
* writes, between two incarnations of one node, the ``crash`` (at the kill)
  and ``restart`` (at the respawn) events that only the parent knows of.
  The checker then treats the restarted process as a new incarnation, as
  extended virtual synchrony does;
* writes a ``byzantine`` event first in the log of the node the demo made
  Byzantine (only the parent knows that too): the checker then judges none
  of that node's events. The overloaded node is honest and judged like the
  others; the checker runs with ``forbid_correct_evictions``, which allows
  only its eviction for overload (by its own signed reports).

On top of the checker, :func:`same_sequences` asks the demo's own question:
did the correct nodes that went through a view together deliver exactly the
same sequence of messages there? And :func:`fault_outcomes` whether each
injected fault had its expected outcome (evicted with the right reason; the
overloaded node back in the ring at the end, the Byzantine one not).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ringward.cli.demo_cluster import NodeProcess
from ringward.cli.demo_timeline import FaultKind, Step
from ringward.eventlog import (
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RejectedEvent,
    RejoinEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    read_log,
    to_json,
)
from ringward.sim.checker import Report, check

__all__ = [
    "FaultOutcome",
    "NodeSummary",
    "Verdict",
    "fault_outcomes",
    "merge_logs",
    "same_sequences",
    "summarize",
    "verify",
    "write_merged",
]


def merge_logs(
    nodes: Sequence[NodeProcess], t0: float, byzantine: Mapping[int, str] | None = None
) -> list[Event]:
    """Every incarnation's events, node after node, on one time base
    (seconds since ``t0``), with crash/restart events between incarnations
    and a ``byzantine`` event (behaviour ``byzantine[id]``) at t=0 for each
    node id in ``byzantine``."""
    merged: list[Event] = []
    for node in nodes:
        last_t = 0.0
        behaviour = (byzantine or {}).get(node.node_id)
        if behaviour is not None:
            merged.append(ByzantineEvent(t=0.0, node=node.node_id, behaviour=behaviour))
        for i, inc in enumerate(node.incarnations):
            offset = max(inc.started - t0, last_t)
            if i > 0:
                merged.append(RestartEvent(t=offset, node=node.node_id))
            events = read_log(inc.log) if inc.log.exists() else []
            for e in events:
                shifted = replace(e, t=max(offset + e.t, last_t))
                last_t = shifted.t
                merged.append(shifted)
            if inc.killed is not None:
                last_t = max(inc.killed - t0, last_t)
                merged.append(CrashEvent(t=last_t, node=node.node_id))
    return merged


def same_sequences(events: Sequence[Event]) -> list[str]:
    """Problems found, if any: for each view, the correct nodes that were in
    it together and left it for the same next view (or were still in it at
    the end of the run) must have delivered the same ids in the same order:
    extended virtual synchrony's agreement, exactly.

    Left out: nodes marked Byzantine, and a visit that ended in a crash or
    in the node's own rejection (it may stop at any prefix, like a crash).
    """
    byzantine = {e.node for e in events if isinstance(e, ByzantineEvent)}
    # (view, node, incarnation) -> the deliveries there, and where it went next.
    visits: dict[tuple[str, int, int], list[str]] = {}
    next_view: dict[tuple[str, int, int], str | None] = {}
    current: dict[int, tuple[str, int, int]] = {}
    incarnation: dict[int, int] = defaultdict(int)
    for e in events:
        if e.node in byzantine:
            continue
        if isinstance(e, ViewEvent):
            key = (e.view, e.node, incarnation[e.node])
            previous = current.get(e.node)
            if previous is not None:
                next_view[previous] = e.view
            visits[key], next_view[key] = [], None
            current[e.node] = key
        elif isinstance(e, DeliverEvent):
            where = current.get(e.node)
            if where is not None:
                visits[where].append(e.id)
        elif isinstance(e, CrashEvent | RejectedEvent):
            where = current.pop(e.node, None)
            if where is not None:
                del visits[where], next_view[where]
        elif isinstance(e, RestartEvent):
            incarnation[e.node] += 1
    groups: dict[tuple[str, str | None], dict[int, list[str]]] = defaultdict(dict)
    for key, ids in visits.items():
        # A restarted node joins a new ring, so a view has one visit per node.
        view, node, _ = key
        groups[(view, next_view[key])][node] = ids
    problems: list[str] = []
    for (view, after), by_node in groups.items():
        sequences = {tuple(ids) for ids in by_node.values()}
        if len(sequences) > 1:
            counts = {f"node {n}": len(ids) for n, ids in sorted(by_node.items())}
            then = f"moving on to {after}" if after else "at the end"
            problems.append(f"view {view}: members {then} delivered different sequences {counts}")
    return problems


@dataclass(slots=True)
class NodeSummary:
    """What one node did over the whole run (all incarnations)."""

    node: int
    sent: int = 0
    delivered: int = 0
    views: int = 0
    incarnations: int = 1


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """What became of one injected fault, from the event logs."""

    node: int
    name: str
    kind: FaultKind
    evicted_by: tuple[int, ...]  # correct nodes that evicted it
    reasons: tuple[str, ...]  # the reasons they gave
    proof: bool  # every such eviction came with a proof
    rejected: int  # times the node learned it was evicted
    rejoined: bool  # back after its last rejection
    out_s: float | None  # its last rejection to its rejoin (seconds)
    in_final_view: bool  # a member of some correct node's last view

    @property
    def ok(self) -> bool:
        """Evicted by correct members for the expected reason, and then
        back in the ring (overload) or kept out of it (Byzantine)."""
        if not self.evicted_by or set(self.reasons) != {self.kind.reason}:
            return False
        if self.kind.rejoins:
            return self.rejected > 0 and self.rejoined and self.in_final_view
        return not self.in_final_view

    @property
    def expected(self) -> str:
        """What the demo promised, as the summary's check line names it."""
        if self.kind.rejoins:
            return f"overloaded {self.name} evicted for {self.kind.reason} and rejoined"
        return f"byzantine {self.name} evicted for {self.kind.reason}"

    def evicted_text(self) -> str:
        """Short: ``overload x2``, ``equivocation``, or ``no``."""
        if not self.evicted_by:
            return "no"
        times = f" x{self.rejected}" if self.rejected > 1 else ""
        return "/".join(self.reasons) + times

    def back_text(self) -> str:
        """Short: ``after 6.1 s`` (from its last eviction), ``no``, or, for
        a Byzantine node, ``kept out``."""
        if self.in_final_view and self.rejoined:
            return "yes" if self.out_s is None else f"after {self.out_s:.1f} s"
        if self.in_final_view:
            return "still in"
        return "no" if self.kind.rejoins else "kept out"

    def describe(self, names: Mapping[int, str]) -> str:
        """What happened to the node, for the check line."""
        if not self.evicted_by:
            return "not evicted by any correct node"
        how = "a proof" if self.proof else "accusations"
        by = ",".join(names.get(n, str(n)) for n in self.evicted_by)
        text = f"by {by}, with {how}"
        if self.rejected > 1:
            text += f"; evicted {self.rejected} times"
        if self.kind.rejoins:
            if self.rejoined and self.in_final_view:
                text += f"; back {self.back_text()}"
            elif self.in_final_view:
                text += "; in the final view, but never rejected and back"
            else:
                text += "; NOT back"
        else:
            text += "; BACK in the final view" if self.in_final_view else "; kept out"
        return text


@dataclass(slots=True)
class Verdict:
    """The checker's report plus the demo's own checks."""

    report: Report
    sequence_problems: list[str]
    events: int
    views_compared: int
    sequences_checked: bool
    summaries: dict[int, NodeSummary] = field(default_factory=dict)
    # Judged only when ``sequences_checked`` (a run that was not cut short).
    faults: list[FaultOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        faults_ok = not self.sequences_checked or all(f.ok for f in self.faults)
        return self.report.ok and not self.sequence_problems and faults_ok


def summarize(events: Sequence[Event]) -> dict[int, NodeSummary]:
    """Per node: messages sent, delivered, views installed, incarnations."""
    out: dict[int, NodeSummary] = {}
    for e in events:
        s = out.setdefault(e.node, NodeSummary(e.node))
        if isinstance(e, SendEvent):
            s.sent += 1
        elif isinstance(e, DeliverEvent):
            s.delivered += 1
        elif isinstance(e, ViewEvent):
            s.views += 1
        elif isinstance(e, RestartEvent):
            s.incarnations += 1
    return out


def fault_outcomes(
    events: Sequence[Event], timeline: Sequence[Step], ids: Mapping[str, int]
) -> list[FaultOutcome]:
    """For each step of ``timeline``: who evicted its node and why, whether
    it was rejected and came back, and whether it is in the final view
    (``ids``: node name -> roster id)."""
    byzantine = {ids[s.node] for s in timeline if s.kind.byzantine}
    # The final view: the last regular view of each correct node that is
    # not standing down at the end (a rejected node's last view is stale).
    last_view: dict[int, ViewEvent] = {}
    rejected_at_end: set[int] = set()
    for e in events:
        if isinstance(e, ViewEvent) and e.kind == "regular" and e.node not in byzantine:
            last_view[e.node] = e
        elif isinstance(e, RejectedEvent):
            rejected_at_end.add(e.node)
        elif isinstance(e, RejoinEvent):
            rejected_at_end.discard(e.node)
    for node in rejected_at_end:
        last_view.pop(node, None)
    out = []
    for step in timeline:
        node = ids[step.node]
        evictions = [
            e
            for e in events
            if isinstance(e, EvictEvent) and e.target == node and e.node not in byzantine
        ]
        # The node's own events are in its own order in the merged log.
        own = [e for e in events if e.node == node and isinstance(e, RejectedEvent | RejoinEvent)]
        rejections = [e for e in own if isinstance(e, RejectedEvent)]
        rejoined = bool(own) and isinstance(own[-1], RejoinEvent)
        out_s = own[-1].t - rejections[-1].t if rejoined and rejections else None
        out.append(
            FaultOutcome(
                node=node,
                name=step.node,
                kind=step.kind,
                evicted_by=tuple(sorted({e.node for e in evictions})),
                reasons=tuple(sorted({e.reason for e in evictions})),
                proof=bool(evictions) and all(e.proof for e in evictions),
                rejected=len(rejections),
                rejoined=rejoined,
                out_s=out_s,
                in_final_view=any(node in v.members for n, v in last_view.items() if n != node),
            )
        )
    return out


def verify(
    nodes: Sequence[NodeProcess],
    t0: float,
    *,
    settled: bool,
    timeline: Sequence[Step] = (),
    keep: Path | None = None,
) -> Verdict:
    """Merge the logs, run the checker (liveness too when ``settled``: every
    correct node that is still running must end in one view), compare
    delivery sequences per view, and judge each fault of ``timeline``.
    ``keep``: also write the merged log there."""
    ids = {n.name: n.node_id for n in nodes}
    byzantine = {ids[s.node]: s.kind.value for s in timeline if s.kind.byzantine}
    events = merge_logs(nodes, t0, byzantine)
    if keep is not None:
        write_merged(events, keep)
    up = {
        n.node_id
        for n in nodes
        if n.node_id not in byzantine and n.incarnations and n.incarnations[-1].killed is None
    }
    report = check(events, expect_up=up, converge=settled, forbid_correct_evictions=True)
    problems = same_sequences(events) if settled else []
    views = {e.view for e in events if isinstance(e, ViewEvent)}
    return Verdict(
        report,
        problems,
        len(events),
        len(views),
        settled,
        summarize(events),
        fault_outcomes(events, timeline, ids),
    )


def write_merged(events: Sequence[Event], path: Path) -> None:
    """Write the combined log (``python -m ringward.sim.checker`` reads it)."""
    with path.open("w", encoding="ascii") as f:
        for e in events:
            f.write(to_json(e) + "\n")
