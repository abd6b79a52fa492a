"""Running Byzantine members in the simulator, and judging the outcome.

``ringward sim --byzantine ID:BEHAVIOUR[,ID:BEHAVIOUR...]`` runs them; the
test suite runs every behaviour on rings of 4, 7 and 10 nodes
(tests/sim/test_byzantine.py). The behaviours themselves, and what must happen
to each (``EXPECT``: evicted with a proof or by accusations, or harmless),
are ringward.byzantine's; this module builds the world and judges it. The
checker judges every other node with the engine issue's guarantees and
forbids evicting any of them; the overloaded node is honest (not marked
Byzantine), so its deliveries are judged too, and it must be evicted while
overloaded (``OVERLOAD_GRACE_S``), rejoin, and not be evicted again once
healthy. Here ``overload`` processes every datagram slowly
(``OVERLOAD_SLOW_S``) from ``start_s`` to ``duration``/2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ringward.byzantine import EXPECT, TARGETED, ByzantineEngine
from ringward.engine import Engine, EngineConfig
from ringward.eventlog import EvictEvent, RejectedEvent, RejoinEvent
from ringward.sim.decodememo import DecodeMemo
from ringward.sim.interface import EngineLike, Interceptor
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, run_scenario
from ringward.sim.world import World

__all__ = [
    "NEEDS_FAULTS",
    "OVERLOAD_GRACE_S",
    "OVERLOAD_SLOW_S",
    "ByzantineOutcome",
    "run_byzantine",
]

# Faults a behaviour needs to show at all (a lie about the aru, or a
# withheld retransmission, needs something to be missing).
NEEDS_FAULTS = {
    "lie-aru": "loss=0.05",
    "break-link": "loss=0.05",
    "withhold": "loss=0.05",
    "frame-aru": "loss=0.05",
}
# Overload: how slowly the node processes each datagram while overloaded.
OVERLOAD_SLOW_S = 0.02
# An overloaded node is evicted while overloaded: every eviction of it must
# be installed at most this long after its overload ends (the proof is made
# while overloaded; the membership round that installs it takes a moment).
OVERLOAD_GRACE_S = 1.0


@dataclass(frozen=True, slots=True)
class ByzantineOutcome:
    """Whether each node's expectation held, and the detection times."""

    held: bool
    detail: str
    # node -> seconds from its first misdeed (start) to the first eviction.
    detected_s: Mapping[int, float]
    result: Result


def run_byzantine(
    scenario: Scenario,
    spec: Mapping[int, tuple[str, int | None]],
    *,
    start_s: float = 1.0,
    crashed: tuple[int, ...] = (),
    interceptor: Interceptor | None = None,
) -> ByzantineOutcome:
    """Run ``scenario`` with the given Byzantine (and overloaded) nodes and
    judge each expectation. Misbehaviour starts at ``start_s``; ``crashed``
    nodes are down from the start (the world restarts them when the faults
    end, at ``scenario.duration``); ``interceptor`` sees every datagram sent
    (run_scenario)."""
    cfg = scenario.config or EngineConfig()
    keys = (
        SimKeys(scenario.seed, tuple(range(1, scenario.nodes + 1))) if scenario.security else None
    )
    bad = {n: b for n, b in spec.items() if b[0] != "overload"}
    overloaded = [n for n, b in spec.items() if b[0] == "overload"]

    made: list[ByzantineEngine] = []
    memo = DecodeMemo()

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> EngineLike:
        security = keys.security(node) if keys is not None else None
        if node not in bad:
            return Engine(
                node,
                roster,
                config=cfg,
                incarnation=inc,
                ring_seq=rs,
                now=now,
                security=security,
                decoder=memo,
            )
        name, arg = bad[node]
        byz = ByzantineEngine(
            node,
            roster,
            behaviour=name,
            arg=arg,
            start_s=start_s,
            config=cfg,
            incarnation=inc,
            ring_seq=rs,
            now=now,
            security=security,
            decoder=memo,
        )
        made.append(byz)
        return byz

    def setup(world: World) -> None:
        for node in crashed:
            world.schedule(0.0, world.crash, node)
        for node in overloaded:
            world.schedule(start_s, world.set_slow, node, OVERLOAD_SLOW_S)
            world.schedule(scenario.duration / 2, world.set_slow, node, 0.0)

    marks = {n: (b[0] if b[1] is None else f"{b[0]}:{b[1]}") for n, b in bad.items()}
    # The whole quiet phase: an evicted member that rejoins after its
    # cool-down and misbehaves again must be evicted again before the end.
    quiet = dataclasses.replace(scenario, early_stop=False)
    result = run_scenario(
        quiet, engine_factory=make, byzantine=marks, setup=setup, interceptor=interceptor
    )
    return _judge(result, spec, start_s, scenario.duration / 2)


@dataclass
class _Seen:
    """What the event log says happened to each judged node."""

    evicted: dict[int, float] = dataclasses.field(default_factory=dict)  # first eviction
    healthy_evictions: dict[int, float] = dataclasses.field(default_factory=dict)
    reasons: dict[int, set[str]] = dataclasses.field(default_factory=dict)
    rejoined: set[int] = dataclasses.field(default_factory=set)


def _seen(result: Result, spec: Mapping[int, object], overload_end_s: float) -> _Seen:
    seen = _Seen()
    for e in result.events:
        if isinstance(e, EvictEvent) and e.node not in spec:
            seen.evicted.setdefault(e.target, e.t)
            seen.reasons.setdefault(e.target, set()).add(e.reason)
            if e.t > overload_end_s + OVERLOAD_GRACE_S:
                seen.healthy_evictions.setdefault(e.target, e.t)
        elif isinstance(e, RejoinEvent):
            seen.rejoined.add(e.node)
        elif isinstance(e, RejectedEvent):
            seen.reasons.setdefault(e.node, set()).add(e.reason)
    return seen


def _judge(
    result: Result,
    spec: Mapping[int, tuple[str, int | None]],
    start_s: float,
    overload_end_s: float,
) -> ByzantineOutcome:
    seen = _seen(result, spec, overload_end_s)
    evicted, reasons, rejoined = seen.evicted, seen.reasons, seen.rejoined
    healthy_evictions = seen.healthy_evictions
    problems = []
    for node, (name, arg) in sorted(spec.items()):
        want = EXPECT[name]
        got = reasons.get(node, set())
        if want == "harmless":
            continue
        if node not in evicted:
            problems.append(f"node {node} ({name}) never evicted")
        elif want == "proof" and not any(r != "accused" for r in got):
            problems.append(f"node {node} ({name}) evicted without proof: {sorted(got)}")
        elif want == "overload" and ("overload" not in got or node not in rejoined):
            problems.append(
                f"node {node} (overload) reasons {sorted(got)}, rejoined={node in rejoined}"
            )
        elif want == "overload" and node in healthy_evictions:
            problems.append(
                f"node {node} (overload) evicted at {healthy_evictions[node]:.3f} s,"
                f" healthy since {overload_end_s:.3f} s"
            )
        if name in TARGETED and arg is not None and arg in evicted:
            problems.append(f"framed node {arg} evicted")
    if not result.ok:
        first = result.report.violations[0]
        more = len(result.report.violations) - 1
        problems.append(f"guarantees broken: {first}" + (f" (+{more} more)" if more else ""))
    detected = {n: round(t - start_s, 3) for n, t in evicted.items() if n in spec}
    detail = "; ".join(problems) if problems else f"detection s {detected}"
    return ByzantineOutcome(not problems, detail, detected, result)
