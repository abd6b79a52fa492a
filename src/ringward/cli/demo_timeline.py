"""The demo's fault timeline: which node misbehaves, how, and when.

A timeline is a list of :class:`Step` (seconds since the node processes
started, a fault kind, a node name). Both faults are armed when the node's
process starts (``ringward node --misbehave KIND --misbehave-after AT``,
:func:`node_args`): the node's own clock triggers them, so they happen on
time whatever the demo's parent process is doing (that clock starts with
the node, a few tenths of a second after the spawn). At ``AT`` the demo
only announces the fault (:func:`announce`); everything shown after that
(scores, evictions, rejection, rejoin) is what the nodes themselves print.

* :attr:`FaultKind.EQUIVOCATE`: a Byzantine node signs two different tokens
  for one position of the token chain. Expected: every correct member
  evicts it with a proof (reason ``equivocation``) within about a rotation;
  it stays rejected for the rest of the run (its cool-down is 300 s).
* :attr:`FaultKind.OVERLOAD`: an honest node's process blocks 20 ms per
  datagram, and at least 1.28 s per wake-up to read, for 8 s. Expected: its
  own signed load reports convict it (reason ``overload``), it rejects
  itself, and once the overload is over it rejoins by itself after its
  cool-down (3 s, or 6 s on a second eviction).

The crash and restart of earlier versions of the demo are gone. Once the
Byzantine node is out, a crash would leave 3 of 5 nodes, below the
Byzantine quorum of 4 (docs/fault-detector.md); timed around the overload
instead, it would overlap a cool-down or add another ten seconds to a run
that is already busy. Crashes stay covered by the simulator's matrix and,
with real processes and kill -9, by tests/cli/test_runtime_cli.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ringward.cli.demo_cluster import LocalCluster

__all__ = [
    "BYZANTINE_AT",
    "OVERLOAD_AT",
    "FaultKind",
    "Step",
    "announce",
    "default_timeline",
    "node_args",
]


class FaultKind(Enum):
    """Faults the demo injects (each value is the ``--misbehave`` name)."""

    EQUIVOCATE = "equivocate"
    OVERLOAD = "overload"

    @property
    def byzantine(self) -> bool:
        """True for an attack (the checker does not judge the node), False
        for an honest node in trouble (its deliveries are checked)."""
        return self is FaultKind.EQUIVOCATE

    @property
    def reason(self) -> str:
        """The eviction reason the correct members must give."""
        return {FaultKind.EQUIVOCATE: "equivocation", FaultKind.OVERLOAD: "overload"}[self]

    @property
    def rejoins(self) -> bool:
        """True when the node must be back in the ring by the end."""
        return self is FaultKind.OVERLOAD

    @property
    def what(self) -> str:
        """What the node does (after its name, on the timeline)."""
        return {
            FaultKind.EQUIVOCATE: "turns Byzantine: signs two different tokens per position",
            FaultKind.OVERLOAD: "is overloaded for 8 s: blocks 20 ms per datagram, 1.28 s per read",
        }[self]

    @property
    def expect(self) -> str:
        """What should follow."""
        return {
            FaultKind.EQUIVOCATE: "evicted with a proof (equivocation), kept out",
            FaultKind.OVERLOAD: "evicted for overload by its own signed load reports, "
            "rejoins by itself once healthy",
        }[self]


@dataclass(frozen=True, slots=True)
class Step:
    """``at`` seconds after the processes start, ``node`` starts ``kind``."""

    at: float
    kind: FaultKind
    node: str


# Fractions of --duration, counted from the processes' start (the ring forms
# in a second or two): the Byzantine node first, so its eviction is over
# before the overload begins; the overload early enough that its eviction,
# the cool-down and the rejoin (about 10 s in all) fit in the default run
# with streaming still going on.
BYZANTINE_AT: Final = 0.15
OVERLOAD_AT: Final = 0.3
# Floors for short runs: after the ring formed, and the overload a few
# seconds after the Byzantine node's eviction.
BYZANTINE_MIN_S: Final = 3.0
OVERLOAD_MIN_S: Final = 7.0


def default_timeline(names: list[str], duration: float, faults: bool) -> list[Step]:
    """The demo's run (nothing with ``faults=False``): the last node
    equivocates, the middle one is overloaded. node1, the lowest id and so
    the first representative, stays correct."""
    if not faults:
        return []
    byzantine_at = max(BYZANTINE_AT * duration, BYZANTINE_MIN_S)
    overload_at = max(OVERLOAD_AT * duration, OVERLOAD_MIN_S)
    return [
        Step(byzantine_at, FaultKind.EQUIVOCATE, names[-1]),
        Step(overload_at, FaultKind.OVERLOAD, names[len(names) // 2]),
    ]


def node_args(timeline: list[Step], name: str) -> list[str]:
    """Extra ``ringward node`` arguments that arm ``name``'s fault, if any."""
    for step in timeline:
        if step.node == name:
            return ["--misbehave", step.kind.value, "--misbehave-after", f"{step.at:.3f}"]
    return []


def announce(cluster: LocalCluster, step: Step) -> None:
    """Note, on the demo's timeline, that a fault starts now."""
    cluster.note(step.kind.value, step.node, f"{step.node} {step.kind.what}")
