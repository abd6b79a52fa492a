"""What the simulated world exchanges with engines and adversaries.

The engine interface the world drives (:class:`EngineLike`, the sans-IO verbs
of engine/api.py), how engines are built (:data:`EngineFactory`), the seam
for network adversaries (:data:`Interceptor`), the world's bounds
(:class:`WorldLimits`), its one error (:class:`SimulationError`) and what it
records of engine calls over the CPU budget (:class:`CpuOverrun`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from ringward.engine.api import MessageId, Ready
from ringward.errors import RingwardError

__all__ = [
    "CPU_ABORT_FACTOR",
    "CpuBudgetError",
    "CpuOverrun",
    "Datagram",
    "EngineFactory",
    "EngineLike",
    "Interceptor",
    "SimulationError",
    "WorldLimits",
    "digest",
]


# An engine call still running after this many CPU budgets is interrupted
# (World's watchdog): far over the budget already, and most likely never
# ending. Below it the call completes, so its whole cost is reported.
CPU_ABORT_FACTOR: Final = 20


class SimulationError(RingwardError):
    """The simulation itself cannot go on: a bound was exceeded or an engine
    raised (blame: the engine under test, or the scenario's limits)."""


@dataclass(frozen=True, slots=True)
class CpuOverrun:
    """One engine call that took more CPU time than the CPU budget.

    Virtual time cannot see CPU: an engine that loops for seconds over a
    range a Byzantine member named would pass every guarantee, so the world
    measures every call (``call``: create, receive, tick, submit, leave,
    ready, note_receive_queue) and the first overrun ends the run (the
    checker reports it). ``interrupted``: the call was still running at
    ``CPU_ABORT_FACTOR`` x the budget and was cut short by the watchdog
    (``cpu_s`` is what it had used by then). ``cpu_s`` is its thread's CPU time
    less the garbage collector's.
    """

    node: int
    incarnation: int
    call: str
    t: float  # virtual time of the call
    cpu_s: float
    budget_s: float
    interrupted: bool = False

    def __str__(self) -> str:
        return (
            f"node {self.node} (incarnation {self.incarnation}) spent "
            f"{self.cpu_s * 1000:.1f} ms of CPU time in one {self.call} at t={self.t!r} "
            f"(budget {self.budget_s * 1000:g} ms"
            + (f", interrupted at {CPU_ABORT_FACTOR}x" if self.interrupted else "")
            + "); the run stopped there"
        )


class CpuBudgetError(SimulationError):
    """An engine call ran over the CPU budget: the run stops there (a call
    that spins once spins again; an interrupted one left its engine
    mid-call). The runner turns this into a failed result (run_scenario)."""

    def __init__(self, overrun: CpuOverrun) -> None:
        super().__init__("sim.cpu_budget", str(overrun))
        self.overrun = overrun


class EngineLike(Protocol):
    """The sans-IO engine interface the world drives (ringward.engine.Engine)."""

    def receive(self, now: float, datagram: bytes, source: object = None) -> None: ...

    def tick(self, now: float) -> None: ...

    def submit(self, now: float, payload: bytes, safe: bool = False) -> MessageId: ...

    def ready(self) -> Ready: ...


# (node_id, roster, incarnation, now, ring_seq) -> a new engine for that
# node; ring_seq is what the node last persisted (Ready.persist_ring_seq),
# which survives its crashes like a state file on disk.
EngineFactory = Callable[[int, tuple[int, ...], int, float, int], EngineLike]


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram in flight from ``src`` to ``dest``."""

    src: int
    dest: int
    data: bytes


# Consulted for every datagram sent, before the network model: returns the
# datagrams to put on the wire instead (none: dropped; altered; or extra,
# injected ones). The seam for Byzantine network attacks.
Interceptor = Callable[[float, Datagram], Iterable[Datagram]]


@dataclass(frozen=True, slots=True)
class WorldLimits:
    """Caps that keep a broken engine or scenario from running forever."""

    # Datagrams queued at a paused or slow node: a kernel socket buffer's
    # worth of small datagrams. Beyond it they are dropped, as the kernel would.
    inbox_max: int = 10_000
    # Entries processed in one virtual second. An idle 9-node ring needs
    # ~20k, a loaded one a few times that; far more means a retransmission,
    # join or timer storm. Low enough to trip within seconds of wall time
    # (the engine runs ~50k entries per wall second); raise it for 30+ nodes.
    events_per_s_max: int = 250_000
    # Entries waiting in the heap at once (arrivals, timers, faults).
    queue_max: int = 2_000_000
    # Process time one engine call may take (ms; 0: not measured). The first
    # call over it ends the run (CpuBudgetError, a CpuOverrun); one still
    # running at CPU_ABORT_FACTOR times it is interrupted. The garbage
    # collector's time is not counted (World._call). The most an honest
    # call was seen to take: 16 ms (a 4-node eviction, proofs verified).
    cpu_budget_ms: float = 50.0


def digest(payload: bytes) -> str:
    """The payload digest the event log carries (BLAKE2b-128, hex)."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
