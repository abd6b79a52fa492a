"""The demo's fault timeline: what happens to which node, and when.

A timeline is a list of :class:`Step` (a fraction of the run's duration, a
fault kind, a node name). :data:`HANDLERS` maps each kind the project can
inject today to the function that does it; :data:`PENDING` names the kinds
that wait for the fault detector (DESIGN.md §5) with the reason, and the
demo says so in its output instead of pretending. When the fault detector
lands, a pending kind gets a handler here and a step in
:func:`default_timeline`; nothing else in the demo changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ringward.cli.demo_cluster import LocalCluster

__all__ = ["HANDLERS", "PENDING", "FaultKind", "Step", "default_timeline", "inject"]


class FaultKind(Enum):
    """Faults the demo knows of (the last two are not built yet)."""

    CRASH = "crash"
    RESTART = "restart"
    BYZANTINE_EQUIVOCATION = "byzantine-equivocation"
    OVERLOAD = "overload"


@dataclass(frozen=True, slots=True)
class Step:
    """At ``at`` x duration, apply ``kind`` to ``node``."""

    at: float
    kind: FaultKind
    node: str


# The crash lands a third of the way in and the restart at half-time, so the
# ring runs a while with the node gone and long enough after its return to
# show that it caught up.
CRASH_AT: Final = 1 / 3
RESTART_AT: Final = 1 / 2


def _crash(cluster: LocalCluster, name: str) -> None:
    node = cluster.by_name(name)
    node.kill()
    cluster.note("crash", name, f"{name} crashed (kill -9)")


def _restart(cluster: LocalCluster, name: str) -> None:
    node = cluster.by_name(name)
    node.start()
    cluster.note("restart", name, f"{name} restarted (new process, same keys)")


HANDLERS: Final[dict[FaultKind, Callable[[LocalCluster, str], None]]] = {
    FaultKind.CRASH: _crash,
    FaultKind.RESTART: _restart,
}

# Hooks for the faults that come with the fault detector (suspicion scores,
# proofs, eviction and rejoin). Injecting them needs a node that can be told
# to misbehave and a detector that evicts it; neither exists, so they are
# listed, never simulated.
PENDING: Final[dict[FaultKind, str]] = {
    FaultKind.BYZANTINE_EQUIVOCATION: (
        "a node signing two different tokens for one position (evicted with proof)"
    ),
    FaultKind.OVERLOAD: "a node reporting overload until it is evicted, then rejoining",
}


def default_timeline(names: list[str], faults: bool) -> list[Step]:
    """The demo's run: crash one node, restart it (nothing with
    ``faults=False``). The victim is the second node, so the ring's lowest
    id (the first representative) keeps running."""
    if not faults:
        return []
    victim = names[1]
    return [
        Step(CRASH_AT, FaultKind.CRASH, victim),
        Step(RESTART_AT, FaultKind.RESTART, victim),
    ]


def inject(cluster: LocalCluster, step: Step) -> None:
    """Apply one step. NotImplementedError for a pending kind."""
    handler = HANDLERS.get(step.kind)
    if handler is None:
        raise NotImplementedError(f"{step.kind.value}: {PENDING.get(step.kind, 'unknown')}")
    handler(cluster, step.node)
