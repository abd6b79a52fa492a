"""Scenarios and the seeded fault timeline.

A :class:`Scenario` says what kind of world to build (ring size, IPv4 or
IPv6, a baseline loss, a relay fault, Byzantine nodes) and which faults to
inject, as :class:`FaultSpec` templates. :func:`timeline` draws the concrete
schedule from a seed, like the simulator does: which node each fault hits,
how long it lasts, the quiet gap before it. The same seed gives the same
timeline, so a failing run is repeated with ``--seed``.

Faults run one after another: inject, hold, heal, wait until the ring has
re-formed with every node, then the next one. That way each fault's
reconfiguration times are measured on their own.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Final

__all__ = ["FaultKind", "FaultSpec", "RelayFault", "Scenario", "Step", "timeline"]

# Quiet time before each fault, seconds (drawn uniformly): enough for the
# workload to flow in the healed ring.
GAP_S: Final = (1.5, 3.0)


class FaultKind(enum.Enum):
    KILL = "kill -9"  # then restart, ring-seq file kept
    KILL_FRESH = "kill -9, ring-seq deleted"  # then restart without it
    PAUSE = "SIGSTOP"  # then SIGCONT
    PARTITION = "partition"  # targets cut off from the rest, both ways
    ASYMMETRIC = "asymmetric"  # targets[0] no longer hears targets[1]
    LINK_DOWN = "link down"
    LOSS = "loss"  # every receiver drops loss_permille of UDP datagrams
    CPU_STARVE = "cpu starve"  # one node held at cpu_percent of a CPU
    ROSTER_REVOKE = "roster revoke"  # keys revoke + accept while running
    ROSTER_ADD = "roster add"  # keys add + accept, then the new node starts


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault to draw: its kind, how many nodes it hits, how long it lasts
    (uniform in ``hold_s``) and its strength."""

    kind: FaultKind
    targets: int = 1
    hold_s: tuple[float, float] = (3.0, 5.0)
    loss_permille: int = 0
    cpu_percent: float = 0.0

    def describe(self) -> str:
        text = self.kind.value
        if self.kind is FaultKind.LOSS:
            text += f" {self.loss_permille / 10:g}%"
        elif self.kind is FaultKind.CPU_STARVE:
            text += f" to {self.cpu_percent:g}% cpu"
        elif self.targets > 1:
            text += f" of {self.targets} nodes"
        lo, hi = self.hold_s
        return f"{text} for {lo:g}-{hi:g}s" if hi else text


@dataclass(frozen=True, slots=True)
class RelayFault:
    """What the relay does to every datagram (see chaoskit/relay.py)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    dup_permille: int = 0
    reorder_permille: int = 0
    reorder_ms: float = 0.0
    rate_kbit: float = 0.0
    queue_ms: float = 0.0

    def describe(self) -> str:
        parts = []
        if self.delay_ms or self.jitter_ms:
            parts.append(f"delay {self.delay_ms:g}+-{self.jitter_ms:g}ms")
        if self.dup_permille:
            parts.append(f"dup {self.dup_permille / 10:g}%")
        if self.reorder_permille:
            parts.append(f"reorder {self.reorder_permille / 10:g}% +{self.reorder_ms:g}ms")
        if self.rate_kbit:
            parts.append(f"rate {self.rate_kbit:g}kbit/{self.queue_ms:g}ms")
        return ",".join(parts) or "relay"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One world and its faults."""

    name: str
    nodes: int
    faults: tuple[FaultSpec, ...] = ()
    ipv6: bool = False
    loss_permille: int = 0  # for the whole run, every receiver
    relay: RelayFault | None = None  # from the start, healed after relay_hold_s
    relay_hold_s: float = 12.0  # workload under the relay's fault once the ring formed
    # Node index (1-based) -> --misbehave behaviour; started after the ring
    # formed (misbehave_after_s).
    byzantine: dict[int, str] = field(default_factory=dict)
    misbehave_after_s: float = 6.0
    # Namespaces made beyond ``nodes`` for nodes added by ROSTER_ADD.
    spare_nodes: int = 0
    rate_per_node_hz: float = 4.0  # the workload: lines broadcast per second
    tail_s: float = 4.0  # workload after the last heal
    # Why the scenario is expected to fail (a bug found, see the report), or
    # None; it runs anyway, as a strict xfail.
    known_bug: str | None = None
    # Why it cannot run yet (skipped with this reason), or None.
    skip: str | None = None

    def describe(self) -> str:
        parts = [s.describe() for s in self.faults]
        if self.loss_permille:
            parts.append(f"loss {self.loss_permille / 10:g}%")
        if self.relay is not None:
            parts.append(self.relay.describe())
        parts += [f"byzantine {b}" for b in self.byzantine.values()]
        if self.ipv6:
            parts.append("ipv6")
        return "; ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class Step:
    """One concrete fault of a timeline."""

    kind: FaultKind
    targets: tuple[int, ...]  # node indices, 1-based
    gap_s: float  # quiet time before it
    hold_s: float
    loss_permille: int = 0
    cpu_percent: float = 0.0

    def describe(self) -> str:
        who = ",".join(f"n{t}" for t in self.targets)
        extra = ""
        if self.kind is FaultKind.LOSS:
            extra = f" {self.loss_permille / 10:g}%"
        elif self.kind is FaultKind.CPU_STARVE:
            extra = f" {self.cpu_percent:g}%cpu"
        elif self.kind is FaultKind.ASYMMETRIC:
            who = f"n{self.targets[0]} deaf to n{self.targets[1]}"
        return f"{self.kind.value}{extra} {who} for {self.hold_s:.1f}s (after {self.gap_s:.1f}s)"


def timeline(scenario: Scenario, seed: int) -> list[Step]:
    """The concrete faults of ``scenario`` for ``seed``: Byzantine nodes are
    never chosen as targets (they are judged apart)."""
    rng = random.Random(f"{scenario.name}:{seed}")
    honest = [i for i in range(1, scenario.nodes + 1) if i not in scenario.byzantine]
    spare = scenario.nodes
    steps = []
    for spec in scenario.faults:
        count = 2 if spec.kind is FaultKind.ASYMMETRIC else spec.targets
        targets = tuple(rng.sample(honest, count)) if spec.kind is not FaultKind.LOSS else ()
        if spec.kind is FaultKind.ROSTER_ADD:
            spare += 1
            targets = (spare,)
        elif spec.kind is FaultKind.ROSTER_REVOKE:
            honest = [i for i in honest if i not in targets]  # never revoked twice
        if spec.kind is not FaultKind.ASYMMETRIC:
            targets = tuple(sorted(targets))
        steps.append(
            Step(
                kind=spec.kind,
                targets=targets,
                gap_s=round(rng.uniform(*GAP_S), 2),
                hold_s=round(rng.uniform(*spec.hold_s), 2),
                loss_permille=spec.loss_permille,
                cpu_percent=spec.cpu_percent,
            )
        )
    return steps
