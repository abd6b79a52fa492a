"""Figures for ``Node.status()``, the control channel and the metrics: the
token rotation rate, the fault detector's scores and verdicts, and running
totals of what the node delivered (:class:`Telemetry`)."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, cast

from ringward.engine import Engine, MessageId, State
from ringward.runtime.events import Delivered, Event, Evicted, Rejected, ViewChanged

__all__ = [
    "LATENCY_BUCKETS_S",
    "PENDING_SENDS_MAX",
    "Exclusion",
    "RotationMeter",
    "Telemetry",
    "exclusions",
    "scores",
]

# Upper bounds of the self-delivery latency histogram, in seconds: from a
# loopback ring under no load (~1 ms) to a ring reforming after a token loss.
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Own messages whose send time is remembered until they come back delivered;
# beyond this (a ring that stopped delivering) the oldest are forgotten, so
# a stalled ring cannot grow the table without bound.
PENDING_SENDS_MAX: Final = 10_000


class RotationMeter:
    """Token rotations per second since the previous reading (or since the
    regular view was installed: a new ring restarts the hop count)."""

    def __init__(self) -> None:
        self._at_s = 0.0
        self._hops = 0

    def restart(self, now_s: float, hops: int) -> None:
        self._at_s, self._hops = now_s, hops

    def rate(self, now_s: float, engine: Engine | None, view: ViewChanged | None) -> float:
        if engine is None or view is None or now_s <= 0.0:
            return 0.0
        hops = engine.token_hops
        then_s, hops_then = self._at_s, self._hops
        self.restart(now_s, hops)
        if hops < hops_then or now_s <= then_s:
            return 0.0  # a new ring restarted the hop count
        return (hops - hops_then) / len(view.members) / (now_s - then_s)


def scores(engine: Engine | None) -> Mapping[int, Mapping[str, float]]:
    """The detector's scores from ``Engine.status()``, read-only."""
    if engine is None:
        return MappingProxyType({})
    raw = cast("dict[int, dict[str, float]]", engine.status()["scores"])
    return MappingProxyType({peer: MappingProxyType(dict(s)) for peer, s in raw.items()})


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A node kept out of the ring: evicted for ``reason`` (``proof`` when
    its own signed statements convict it), allowed back after
    ``cooldown_left_s`` (0: its cool-down is over, it may rejoin).
    ``is_self`` when it is this node (rejected)."""

    node_id: int
    reason: str
    proof: bool
    cooldown_left_s: float
    is_self: bool


def exclusions(
    engine: Engine | None, now_s: float, rejected_reason: str | None = None
) -> tuple[Exclusion, ...]:
    """Every node this node's fault detector holds a verdict against, and
    this node itself while it is rejected (``rejected_reason``: the reason of
    its last :class:`Rejected` event), ascending by node id."""
    if engine is None:
        return ()
    det = engine.detector
    out: dict[int, Exclusion] = {}
    for target, verdict in det.verdicts.items():
        left = max(0.0, verdict.at + det.cooldown_s(target) - now_s)
        is_self = target == engine.node_id
        out[target] = Exclusion(target, verdict.reason, verdict.proof, left, is_self)
    if engine.state is State.REJECTED:
        due = engine.timer_due("rejoin")
        left = max(0.0, due - now_s) if due is not None else 0.0
        known = out.get(engine.node_id)
        reason = known.reason if known else (rejected_reason or "unknown")
        proof = known.proof if known else False
        out[engine.node_id] = Exclusion(engine.node_id, reason, proof, left, True)
    return tuple(out[k] for k in sorted(out))


class Telemetry:
    """Running totals of one node's events, for metrics: fed by the node
    with every event it hands the application and every broadcast."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.delivered_bytes = 0
        self.broadcast_bytes = 0
        self.views: Counter[str] = Counter()  # by kind
        self.evictions: Counter[str] = Counter()  # by reason
        self.rejections: Counter[str] = Counter()  # by reason
        self.last_rejected: str | None = None
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)  # the last: +Inf
        self.latency_sum_s = 0.0
        self._pending: dict[MessageId, float] = {}

    def awaiting(self, upto: MessageId | None = None) -> int:
        """Own messages broadcast and not yet delivered here (those up to
        ``upto`` of the same sender, when given; the table is bounded)."""
        if upto is None:
            return len(self._pending)
        return sum(1 for m in self._pending if m.sender == upto.sender and m.msg_no <= upto.msg_no)

    def sent(self, msg_id: MessageId, size_bytes: int, now_s: float) -> None:
        """This node broadcast ``size_bytes`` as ``msg_id`` at ``now_s``."""
        self.broadcast_bytes += size_bytes
        if len(self._pending) >= PENDING_SENDS_MAX:
            del self._pending[next(iter(self._pending))]
        self._pending[msg_id] = now_s

    def delivered(self, event: Delivered, now_s: float) -> None:
        """The node handed the delivery ``event`` to the application at ``now_s``."""
        self.deliveries += 1
        self.delivered_bytes += len(event.payload)
        if self._pending:
            at = self._pending.pop(event.msg_id, None)
            if at is not None:
                self.observe_latency(max(0.0, now_s - at))

    def event(self, event: Event, now_s: float) -> None:
        """The node handed ``event`` to the application at ``now_s``."""
        if isinstance(event, Delivered):
            self.delivered(event, now_s)
        elif isinstance(event, ViewChanged):
            self.views[event.kind] += 1
        elif isinstance(event, Evicted):
            self.evictions[event.reason] += 1
        elif isinstance(event, Rejected):
            self.rejections[event.reason] += 1
            self.last_rejected = event.reason

    def observe_latency(self, latency_s: float) -> None:
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
        self.latency_sum_s += latency_s
