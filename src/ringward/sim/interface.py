"""What the simulated world exchanges with engines and adversaries.

The engine interface the world drives (:class:`EngineLike`, the sans-IO verbs
of engine/api.py), how engines are built (:data:`EngineFactory`), the seam
for network adversaries (:data:`Interceptor`), the world's bounds
(:class:`WorldLimits`) and its one error (:class:`SimulationError`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ringward.engine.api import MessageId, Ready
from ringward.errors import RingwardError

__all__ = [
    "Datagram",
    "EngineFactory",
    "EngineLike",
    "Interceptor",
    "SimulationError",
    "WorldLimits",
    "digest",
]


class SimulationError(RingwardError):
    """The simulation itself cannot go on: a bound was exceeded or an engine
    raised (blame: the engine under test, or the scenario's limits)."""


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


def digest(payload: bytes) -> str:
    """The payload digest the event log carries (BLAKE2b-128, hex)."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
