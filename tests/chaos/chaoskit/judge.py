"""Judge a chaos run: merge the event logs, run the guarantee checker,
measure reconfiguration times, write one line.

The merge is the demo's (ringward.cli.demo_verify): every process logs ``t``
since its own start; shifted by the process's start on the parent's
monotonic clock they share one time base (a little early, in order per
node), with ``crash``/``restart`` events between incarnations and a
``byzantine`` event first for every node run with ``--misbehave``. The
checker then judges all seven guarantees and, with
``forbid_correct_evictions``, that no correct node was evicted (overload,
by a node's own signed reports, excepted). On top: every correct node that
went through a view with others delivered the same sequence there
(``same_sequences``), and every Byzantine node whose behaviour must be
evicted was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from chaoskit.procs import NodeProc, ViewSeen
from chaoskit.schedule import FaultKind, Scenario, Step
from ringward.byzantine.expect import EXPECT
from ringward.cli.demo_verify import same_sequences
from ringward.eventlog import (
    ByzantineEvent,
    CrashEvent,
    DeliverEvent,
    Event,
    EvictEvent,
    RestartEvent,
    SendEvent,
    ViewEvent,
    read_log,
    to_json,
)
from ringward.sim.checker import Report, check

__all__ = ["Outcome", "Result", "judge", "merge_logs", "reconfiguration"]


def merge_logs(nodes: Sequence[NodeProc], t0: float, byzantine: Mapping[int, str]) -> list[Event]:
    """Every incarnation's events on one time base (seconds since ``t0``)."""
    merged: list[Event] = []
    for node in nodes:
        last_t = 0.0
        behaviour = byzantine.get(node.node_id)
        if behaviour is not None:
            merged.append(ByzantineEvent(t=0.0, node=node.node_id, behaviour=behaviour))
        for i, inc in enumerate(node.incarnations):
            offset = max(inc.started - t0, last_t)
            if i > 0:
                merged.append(RestartEvent(t=offset, node=node.node_id))
            for e in read_log(inc.log) if inc.log.exists() else []:
                shifted = replace(e, t=max(offset + e.t, last_t))
                last_t = shifted.t
                merged.append(shifted)
            if inc.killed is not None:
                last_t = max(inc.killed - t0, last_t)
                merged.append(CrashEvent(t=last_t, node=node.node_id))
    return merged


@dataclass(frozen=True, slots=True)
class Outcome:
    """One fault as it happened: when (seconds since the run's start) and
    how long the ring took to reconfigure around it and back."""

    step: Step
    injected_s: float
    healed_s: float
    out_s: float | None  # injection -> first regular view without a target
    in_s: float | None  # heal -> every node in one view with all of them

    def describe(self) -> str:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}s"

        step = self.step
        short = step.kind.name.lower().replace("_", "-")
        if step.kind is FaultKind.LOSS:
            short += f" {step.loss_permille / 10:g}%"
        elif step.kind is FaultKind.CPU_STARVE:
            short += f" {step.cpu_percent:g}%cpu"
        # asymmetric: deaf>talker (the first no longer hears the second)
        sep = ">" if step.kind is FaultKind.ASYMMETRIC else ","
        who = sep.join(f"n{t}" for t in step.targets)
        head = f"{short}({who}) {step.hold_s:.1f}s" if who else f"{short} {step.hold_s:.1f}s"
        if step.kind not in REMOVING and self.out_s is None:
            # Nobody left the ring: only the time to be whole again counts.
            return f"{head} no-split whole {fmt(self.in_s)}"
        return f"{head} out {fmt(self.out_s)} in {fmt(self.in_s)}"


def reconfiguration(
    views: Sequence[ViewSeen], targets: frozenset[int], injected: float, healed: float
) -> float | None:
    """Seconds from ``injected`` to the first regular view, installed by a
    node not among ``targets``, that lacks one of them (None: never, before
    the heal)."""
    for v in views:
        if (
            injected <= v.t <= healed
            and v.kind == "regular"
            and v.node not in targets
            and not targets <= v.members
        ):
            return v.t - injected
    return None


@dataclass(slots=True)
class Result:
    """A judged run."""

    scenario: Scenario
    seed: int
    report: Report
    problems: list[str]
    sent: int
    delivered: int
    views: int
    evictions: list[str]
    outcomes: list[Outcome]
    extra: list[str] = field(default_factory=list)
    logdir: Path | None = None
    # The fault timeline as drawn and as run (printed with a failure).
    timeline: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.problems

    def line(self) -> str:
        faults = "; ".join(o.describe() for o in self.outcomes) or self.scenario.describe()
        ev = ",".join(self.evictions) or "none"
        verdict = "PASS" if self.ok else f"FAIL ({len(self.report.violations)} violations)"
        if not self.ok:
            verdict = f"FAIL ({len(self.report.violations) + len(self.problems)} problems)"
        return (
            f"{self.scenario.name:<22} nodes={self.scenario.nodes} seed={self.seed} "
            f"faults=[{faults}] sent={self.sent} delivered={self.delivered} "
            f"views={self.views} evictions={ev} {' '.join(self.extra)} -> {verdict}"
        )

    def details(self) -> str:
        out = [self.report.format()] if not self.report.ok else []
        out += self.problems
        if not self.ok:
            out += self.timeline
        return "\n".join(out)


def judge(
    scenario: Scenario,
    seed: int,
    nodes: Sequence[NodeProc],
    t0: float,
    *,
    settled_at: float | None,
    outcomes: list[Outcome],
    merged_path: Path,
    liveness_bound_s: float,
    out_bound_s: float,
    gone: frozenset[int] = frozenset(),
) -> Result:
    """Merge, check, measure. ``settled_at`` (parent clock): when the ring
    was seen whole again after the last fault (None: never, a failure).
    ``out_bound_s``: the longest a ring may take to drop a node that was
    killed, paused or cut off (token + consensus timeouts + slack).
    ``gone``: nodes revoked from the roster during the run (not expected
    up at the end, judged like the others until then)."""
    # ``overload`` is an honest node that starves itself: judged like the
    # others, and it must be evicted for overload (and be back at the end).
    byzantine = {
        n.node_id: scenario.byzantine[i]
        for i, n in enumerate(nodes, 1)
        if scenario.byzantine.get(i, "overload") != "overload"
    }
    overloaded = {
        n.node_id for i, n in enumerate(nodes, 1) if scenario.byzantine.get(i) == "overload"
    }
    events = merge_logs(nodes, t0, byzantine)
    with merged_path.open("w", encoding="ascii") as f:
        for e in events:
            f.write(to_json(e) + "\n")
    up = {n.node_id for n in nodes if n.node_id not in byzantine and n.node_id not in gone}
    settled = settled_at is not None
    report = check(
        events,
        expect_up=up,
        converge=settled,
        settled_after=None if settled_at is None else settled_at - t0,
        forbid_correct_evictions=True,
        liveness_bound_s=liveness_bound_s,
    )
    problems = same_sequences(events)
    if not settled:
        problems.append("the ring never re-formed with every correct node after the last fault")
    evicts = [e for e in events if isinstance(e, EvictEvent) and e.node not in byzantine]
    names = {n.node_id: n.name for n in nodes}
    for node_id, behaviour in byzantine.items():
        if EXPECT.get(behaviour.partition(":")[0]) in ("proof", "accused") and not any(
            e.target == node_id for e in evicts
        ):
            problems.append(f"byzantine {names[node_id]} ({behaviour}) never evicted")
    for o in outcomes:
        if o.step.kind in REMOVING and (o.out_s is None or o.out_s > out_bound_s):
            took = "never" if o.out_s is None else f"after {o.out_s:.1f}s"
            problems.append(
                f"{o.step.describe()}: ring reconfigured {took} (bound {out_bound_s:.1f}s)"
            )
        if o.in_s is None:
            problems.append(f"{o.step.describe()}: the ring was not whole again after the heal")
    for node_id in overloaded:
        if not any(e.target == node_id and e.reason == "overload" for e in evicts):
            problems.append(f"overloaded {names[node_id]} never evicted for overload")
    evictions = sorted({f"{names.get(e.target, e.target)}:{e.reason}" for e in evicts})
    return Result(
        scenario=scenario,
        seed=seed,
        report=report,
        problems=problems,
        sent=sum(isinstance(e, SendEvent) for e in events),
        delivered=sum(isinstance(e, DeliverEvent) for e in events),
        views=len({e.view for e in events if isinstance(e, ViewEvent) and e.kind == "regular"}),
        evictions=evictions,
        outcomes=outcomes,
    )


# Faults after which the node(s) must leave the ring's view (out_s is
# measured); the others (loss, CPU starvation) may pass without a change.
REMOVING = frozenset(
    {
        FaultKind.KILL,
        FaultKind.KILL_FRESH,
        FaultKind.PAUSE,
        FaultKind.PARTITION,
        FaultKind.LINK_DOWN,
    }
)
