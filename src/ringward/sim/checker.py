"""Check an event log against ringward's delivery guarantees.

Theory of operation
-------------------
:func:`check` reads a whole run's events (from :mod:`ringward.eventlog`)
and reports every violation of the guarantees numbered in docs/guarantees.md:
1 total order, 2 no duplication / no creation, 3 self delivery and liveness,
4 virtual synchrony, 5 safe delivery, 6 configuration agreement, 7 sender
FIFO, and 0 for the structural rules of the log itself. Engine calls that
took more than the simulator's CPU budget (measured by the world, not in the
log: ``cpu_overruns``) are reported under 3 as ``cpu_budget``: a node that
computes for seconds is not live, whatever the virtual clock says. It is one replay pass
(:mod:`ringward.sim._replay`) followed by whole-log passes grouped by view
(:mod:`ringward.sim._whole`) and the end-of-run liveness checks here; every
pass is linear in the log, so millions of deliveries check in seconds.

Safety guarantees hold at every prefix of a run; liveness (3) and the
"eventually delivered" halves of 5 only make sense once the run has settled,
so they are judged only with ``converge=True`` (the caller promises that
faults stopped and the log ran until the group was quiescent).

Usage: ``python -m ringward.sim.checker LOG.jsonl`` (exit 0 ok, 1 violations,
2 unreadable or malformed log).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ringward.errors import EventLogError
from ringward.eventlog import DeliverEvent, Event, read_log
from ringward.sim._replay import Replay, replay
from ringward.sim._whole import check_safe, check_total_order, check_virtual_synchrony
from ringward.sim.report import Collector, Report, Violation

if TYPE_CHECKING:
    from ringward.sim.interface import CpuOverrun

__all__ = ["Lag", "Report", "Violation", "check", "delivery_lags", "expected_up", "main"]


def check(
    events: Iterable[Event],
    *,
    expect_up: set[int] | None = None,
    converge: bool = True,
    settled_after: float | None = None,
    forbid_correct_evictions: bool = False,
    cpu_overruns: Iterable[CpuOverrun] = (),
    liveness_bound_s: float | None = None,
) -> Report:
    """Check one run's events; return every violation found.

    ``events`` in log order (each node's events in its own order).

    ``converge``: the run ended settled (faults stopped, network healed, the
    log continued until quiescence). Enables guarantee 3 and the end-of-log
    judgement of guarantee 5. Pass False for a log cut at an arbitrary point.

    ``expect_up``: nodes that must be up and together at the end. Default
    (None): derived by :func:`expected_up` -- nodes whose last crash/restart
    is not a crash, minus Byzantine ones and correct ones left rejected.

    ``settled_after``: time (``t``, seconds) after which faults had stopped;
    messages sent from then on by a node of ``expect_up`` must reach every
    node of ``expect_up``.

    ``forbid_correct_evictions``: report any eviction of a node not marked
    Byzantine, except for overload (by its own signed reports).

    ``liveness_bound_s`` (with ``settled_after``): every message an up node
    sent in its last incarnation is delivered by its sender, and, sent after
    ``settled_after``, by every up node, at most this long after the later
    of its send and ``settled_after``. A run that stalls for a while after
    the faults and then catches up fails this even though it ends clean.

    ``cpu_overruns``: the engine calls the simulator measured over its CPU
    budget (``World.cpu_overruns``); each is a ``cpu_budget`` violation,
    whoever made it (the first one ended the run: a Byzantine node's is a
    fault of its simulated behaviour, and marked so).
    """
    log = events if isinstance(events, Sequence) else list(events)
    out = Collector()
    rp = replay(log, out)
    check_total_order(rp, out)
    check_virtual_synchrony(rp, out)
    check_safe(rp, out, converge=converge)
    if converge:
        up = expected_up(rp) if expect_up is None else set(expect_up)
        _check_self_delivery(rp, up, out)
        _check_convergence(rp, up, out)
        if settled_after is not None:
            _check_settled(rp, up, settled_after, out)
            if liveness_bound_s is not None:
                _check_lag(rp, up, settled_after, liveness_bound_s, out)
    if forbid_correct_evictions:
        for e in rp.evictions:
            # Overload is the node's own signed statement: a correct node
            # may be overloaded (and rejoins once healthy).
            if e.target not in rp.byzantine and e.reason != "overload":
                out.add(
                    0, "correct_node_evicted", f"node {e.node} evicts correct node {e.target}", (e,)
                )
    for overrun in cpu_overruns:
        mark = " (a Byzantine node)" if overrun.node in rp.byzantine else ""
        out.add(3, "cpu_budget", f"{overrun}{mark}")
    return out.report()


def expected_up(rp: Replay) -> set[int]:
    """Nodes expected up and in the final configuration when none are given."""
    return {
        node
        for node, lives in rp.lives.items()
        if not lives[-1].crashed and node not in rp.byzantine and node not in rp.rejected
    }


def _check_self_delivery(rp: Replay, up: set[int], out: Collector) -> None:
    """Guarantee 3a: a node that stays up delivers every message it sent."""
    delivered = {node: rp.delivered_by(node) for node in up}
    for sent in rp.sends.values():
        node = sent.event.node
        lives = rp.lives.get(node)
        # "Stays up": the sending incarnation is the last one and never crashed.
        if node not in up or not lives or sent.incarnation != lives[-1].incarnation:
            continue
        if lives[-1].crashed or delivered[node].get(sent.event.id) == sent.incarnation:
            continue
        out.add(
            3, "self_delivery", f"node {node} never delivers its own {sent.event.id}", (sent.event,)
        )


def _check_convergence(rp: Replay, up: set[int], out: Collector) -> None:
    """Guarantee 3b: every node of ``up`` ends in one regular configuration."""
    final: dict[str, list[int]] = {}
    for node in sorted(up):
        lives = rp.lives.get(node)
        visit = lives[-1].visits[-1] if lives and lives[-1].visits else None
        if visit is None or visit.crashed or visit.view.kind != "regular":
            what = "no view" if visit is None else f"{visit.view.kind} {visit.view.view}"
            out.add(
                3,
                "not_converged",
                f"node {node} ends in {what}",
                () if visit is None else (visit.view,),
            )
            continue
        final.setdefault(visit.view.view, []).append(node)
        members = set(visit.view.members)
        strangers = members - up - rp.byzantine
        if not up <= members or strangers:
            out.add(
                3,
                "not_converged",
                f"node {node} ends in {visit.view.view} with members {sorted(members)}, "
                f"expected {sorted(up)}",
                (visit.view,),
            )
    if len(final) > 1:
        out.add(3, "not_converged", f"nodes end in different configurations: {final}")


class Lag(NamedTuple):
    """How late one delivery was: ``late_s`` after the later of its send
    and the end of the faults."""

    late_s: float
    event: DeliverEvent


def delivery_lags(rp: Replay, up: set[int], after: float) -> list[Lag]:
    """Every delivery the liveness bound judges (``check``,
    ``liveness_bound_s``): by the sender, of a message of its last
    incarnation; by any up node, of a message sent after ``after``; each
    from the later of its send and ``after`` (during the faults a ring may
    not form at all: 10 nodes at 30% loss)."""
    out = []
    for node in up:
        lives = rp.lives.get(node) or []
        for life in lives:
            for visit in life.visits:
                for d in visit.delivered:
                    sent = rp.sends.get(d.id)
                    if sent is None or sent.event.node not in up:
                        continue
                    own = d.node == sent.event.node and life is lives[-1]
                    if not own and sent.event.t < after:
                        continue
                    out.append(Lag(d.t - max(sent.event.t, after), d))
    return out


def _check_lag(rp: Replay, up: set[int], after: float, bound_s: float, out: Collector) -> None:
    late = [lag for lag in delivery_lags(rp, up, after) if lag.late_s > bound_s]
    for lag in sorted(late, key=lambda x: -x.late_s)[:LATE_REPORTED_MAX]:
        out.add(
            3,
            "late_delivery",
            f"node {lag.event.node} delivers {lag.event.id} {lag.late_s:.2f} s after it was "
            f"sent or the faults ended (bound {bound_s:.1f} s)",
            (lag.event,),
        )


# Late deliveries reported per run (the worst first): one stall makes many.
LATE_REPORTED_MAX = 5


def _check_settled(rp: Replay, up: set[int], after: float, out: Collector) -> None:
    """Guarantee 3c: once settled, a message of an up node reaches all up nodes."""
    delivered = {node: rp.delivered_by(node) for node in up}
    for sent in rp.sends.values():
        e = sent.event
        if e.node not in up or e.t < after:
            continue
        missing = sorted(q for q in up if e.id not in delivered[q])
        if missing:
            out.add(
                3,
                "not_delivered_after_settling",
                f"{e.id} of node {e.node} never reaches {missing}",
                (e,),
            )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: check a log file; print violations. Exit 0 ok, 1 violations, 2 bad log."""
    parser = argparse.ArgumentParser(
        prog="python -m ringward.sim.checker", description="Check an event log's guarantees."
    )
    parser.add_argument("log", help="JSON Lines event log")
    parser.add_argument("--expect-up", help="comma-separated node ids up at the end")
    parser.add_argument("--no-converge", action="store_true", help="the log may end mid-run")
    parser.add_argument("--settled-after", type=float, help="t after which faults stopped")
    parser.add_argument("--forbid-correct-evictions", action="store_true")
    args = parser.parse_args(argv)
    try:
        up = None if args.expect_up is None else {int(x) for x in args.expect_up.split(",") if x}
    except ValueError:
        parser.error("--expect-up takes comma-separated integers")
    try:
        events = read_log(args.log)
    except EventLogError as exc:
        print(f"bad log: {exc}", file=sys.stderr)
        return 2
    report = check(
        events,
        expect_up=up,
        converge=not args.no_converge,
        settled_after=args.settled_after,
        forbid_correct_evictions=args.forbid_correct_evictions,
    )
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
