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
  extended virtual synchrony does.

On top of the checker, :func:`same_sequences` asks the demo's own question:
did every node that stayed up in a view deliver exactly the same sequence
of messages there?
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ringward.cli.demo_cluster import NodeProcess
from ringward.sim.checker import Report, check
from ringward.sim.eventlog import (
    CrashEvent,
    DeliverEvent,
    Event,
    RestartEvent,
    SendEvent,
    ViewEvent,
    read_log,
    to_json,
)

__all__ = [
    "NodeSummary",
    "Verdict",
    "merge_logs",
    "same_sequences",
    "summarize",
    "verify",
    "write_merged",
]


def merge_logs(nodes: Sequence[NodeProcess], t0: float) -> list[Event]:
    """Every incarnation's events, node after node, on one time base
    (seconds since ``t0``), with crash/restart events between incarnations."""
    merged: list[Event] = []
    for node in nodes:
        last_t = 0.0
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
    """Problems found, if any: for each view, the nodes that were in it and
    did not crash there must have delivered the same ids in the same order.

    A crashed incarnation's last visit is left out (it may stop at any
    prefix); every other visit, including the one still open at the end of
    a settled run, must match the others of its view exactly.
    """
    visits: dict[str, dict[tuple[int, int], list[str]]] = defaultdict(dict)
    current: dict[int, tuple[str, tuple[int, int]] | None] = {}
    incarnation: dict[int, int] = defaultdict(int)
    for e in events:
        if isinstance(e, ViewEvent):
            key = (e.node, incarnation[e.node])
            visits[e.view][key] = []
            current[e.node] = (e.view, key)
        elif isinstance(e, DeliverEvent):
            where = current.get(e.node)
            if where is not None:
                visits[where[0]][where[1]].append(e.id)
        elif isinstance(e, CrashEvent):
            where = current.pop(e.node, None)
            if where is not None:
                del visits[where[0]][where[1]]
        elif isinstance(e, RestartEvent):
            incarnation[e.node] += 1
    problems: list[str] = []
    for view, by_node in visits.items():
        sequences = {tuple(ids) for ids in by_node.values()}
        if len(sequences) > 1:
            counts = {f"node {n}": len(ids) for (n, _), ids in sorted(by_node.items())}
            problems.append(f"view {view}: members delivered different sequences {counts}")
    return problems


@dataclass(slots=True)
class NodeSummary:
    """What one node did over the whole run (all incarnations)."""

    node: int
    sent: int = 0
    delivered: int = 0
    views: int = 0
    incarnations: int = 1


@dataclass(slots=True)
class Verdict:
    """The checker's report plus the demo's own checks."""

    report: Report
    sequence_problems: list[str]
    events: int
    views_compared: int
    sequences_checked: bool
    summaries: dict[int, NodeSummary] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.sequence_problems


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


def verify(
    nodes: Sequence[NodeProcess], t0: float, *, settled: bool, keep: Path | None = None
) -> Verdict:
    """Merge the logs, run the checker (liveness too when ``settled``), and
    compare delivery sequences per view. ``keep``: also write the merged
    log there."""
    events = merge_logs(nodes, t0)
    if keep is not None:
        write_merged(events, keep)
    report = check(events, converge=settled)
    problems = same_sequences(events) if settled else []
    views = {e.view for e in events if isinstance(e, ViewEvent)}
    return Verdict(report, problems, len(events), len(views), settled, summarize(events))


def write_merged(events: Sequence[Event], path: Path) -> None:
    """Write the combined log (``python -m ringward.sim.checker`` reads it)."""
    with path.open("w", encoding="ascii") as f:
        for e in events:
            f.write(to_json(e) + "\n")
