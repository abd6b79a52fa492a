"""Fold the workers' reports of ``ringward bench`` into one result.

Pure functions over the JSON objects that :mod:`ringward.cli.bench_worker`
prints (no processes, no clocks), so the arithmetic is tested on its own.

Definitions (docs/performance.md, "``ringward bench``"):

* ``delivered_msgs_per_s``: the *lowest* per-node count of deliveries inside
  the sending window divided by its length: the rate at which the whole ring
  agrees on messages;
* self-delivery latency: from the ``broadcast()`` call to the sender's own
  delivery, every message of every node (under a flood this is mostly time
  in the send queue; at a fixed rate it is the ring's own latency);
* all-delivered latency (fixed rate only): from the ``broadcast()`` call to
  the last node's delivery of that message. Workers stamp sends and
  deliveries with ``time.perf_counter()``, which on Linux is the system-wide
  ``CLOCK_MONOTONIC``, so stamps of processes on one host compare;
* CPU: each node process's own user + system time over a window, as a
  percentage of one core and per 1,000 messages delivered everywhere;
* resident memory: each process's peak RSS (``ru_maxrss``) over its life;
* rotations/s: token rotations per second over the window, from the node's
  own hop count.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

__all__ = [
    "SECURITY_OFF",
    "SECURITY_ON",
    "BenchResult",
    "NodeResult",
    "all_delivered_latencies_us",
    "fold",
    "percentile_ms",
]

SECURITY_ON: Final = "on (RingSecurity: Ed25519-signed tokens, AES-256-GCM payloads)"
SECURITY_OFF: Final = "off (NullSecurity: no signatures, no encryption; reference only)"


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One worker's report. ``idle_*`` are NaN when the run had no idle phase."""

    node: int
    sent: int
    delivered_in_window: int
    delivered_per_s: float
    cpu_s: float
    cpu_pct: float
    rss_peak_mib: float
    rotations_per_s: float
    undelivered_own: int
    idle_cpu_pct: float
    idle_rotations_per_s: float


@dataclass(frozen=True, slots=True)
class BenchResult:
    """The whole run (field names are the ``--json`` keys).

    ``idle_s`` is the length of the idle phase (no messages) measured before
    the sending window, 0.0 when there was none; ``cpu_pct_per_node`` and
    ``idle_cpu_pct_per_node`` are the mean over the nodes, the ``*_max``
    figures the worst node. ``latency_all_ms_*`` are NaN under a flood
    (deliveries are only stamped at a fixed rate).
    """

    nodes: int
    size: int
    duration_s: float
    safe: bool
    mode: str  # "flood", "rate" or "idle"
    offered_msgs_per_s: float | None
    delivered_msgs_per_s: float
    delivered_msgs_per_s_sum: float
    mb_per_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    latency_all_ms_p50: float
    latency_all_ms_p99: float
    latency_samples: int
    cpu_s_per_1000_msgs: float
    cpu_pct_per_node: float
    cpu_pct_per_node_max: float
    rss_peak_mib_max: float
    rotations_per_s: float
    idle_s: float
    idle_cpu_pct_per_node: float
    idle_cpu_pct_per_node_max: float
    idle_rotations_per_s: float
    loop: str
    security: str
    per_node: tuple[NodeResult, ...]
    # The protocol parameters given (``--window-size`` ...); the rest are defaults.
    params: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``json.dumps``."""
        out = asdict(self)
        out["per_node"] = [asdict(n) for n in self.per_node]
        return out


def percentile_ms(sorted_us: Sequence[int], p: float) -> float:
    """The ``p`` quantile (0..1, nearest rank) of sorted microseconds, in ms."""
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p))] / 1000.0


def all_delivered_latencies_us(raw: Sequence[Mapping[str, Any]]) -> list[int]:
    """Per message delivered at every node: the last delivery's stamp minus
    the send stamp, sorted. Messages some node did not report are left out
    (a worker stops stamping at its record bound)."""
    sent_at: dict[tuple[int, int], int] = {}
    for r in raw:
        node = int(r["node"])
        for msg_no, t_us in r.get("sends_us", ()):
            sent_at[(node, int(msg_no))] = int(t_us)
    last: dict[tuple[int, int], int] = {}
    seen: dict[tuple[int, int], int] = {}
    for r in raw:
        for sender, msg_no, t_us in r.get("deliveries_us", ()):
            key = (int(sender), int(msg_no))
            seen[key] = seen.get(key, 0) + 1
            last[key] = max(last.get(key, 0), int(t_us))
    everyone = len(raw)
    return sorted(last[key] - t0 for key, t0 in sent_at.items() if seen.get(key, 0) == everyone)


def _mean(xs: Iterable[float]) -> float:
    vals = [x for x in xs if not math.isnan(x)]
    return sum(vals) / len(vals) if vals else float("nan")


def _max(xs: Iterable[float]) -> float:
    vals = [x for x in xs if not math.isnan(x)]
    return max(vals) if vals else float("nan")


def _median(xs: Iterable[float]) -> float:
    vals = sorted(x for x in xs if not math.isnan(x))
    if not vals:
        return float("nan")
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def _node(r: Mapping[str, Any], duration: float) -> NodeResult:
    idle = r.get("idle")
    idle_s = float(idle["seconds"]) if idle else 0.0
    return NodeResult(
        node=int(r["node"]),
        sent=int(r["sent"]),
        delivered_in_window=int(r["delivered_in_window"]),
        delivered_per_s=r["delivered_in_window"] / duration,
        cpu_s=float(r["cpu_s"]),
        cpu_pct=100.0 * float(r["cpu_s"]) / duration,
        rss_peak_mib=float(r.get("rss_peak_kib", math.nan)) / 1024.0,
        rotations_per_s=float(r["rotations_per_s"]),
        undelivered_own=int(r["undelivered_own"]),
        idle_cpu_pct=100.0 * float(idle["cpu_s"]) / idle_s if idle and idle_s else math.nan,
        idle_rotations_per_s=float(idle["rotations_per_s"]) if idle else math.nan,
    )


def fold(
    raw: Sequence[Mapping[str, Any]],
    *,
    size: int,
    duration: float,
    safe: bool,
    rate: float | None,
    idle_s: float,
    uvloop: bool,
    security: bool,
) -> BenchResult:
    """One :class:`BenchResult` from every worker's ``result`` object."""
    per_node = tuple(_node(r, duration) for r in sorted(raw, key=lambda r: int(r["node"])))
    latencies = sorted(int(us) for r in raw for us in r["latencies_us"])
    everywhere_us = all_delivered_latencies_us(raw)
    ring_rate = min(n.delivered_per_s for n in per_node)
    everywhere = min(n.delivered_in_window for n in per_node)
    cpu = sum(n.cpu_s for n in per_node)
    mode = "flood" if rate is None else ("idle" if idle_s else "rate")
    return BenchResult(
        nodes=len(per_node),
        size=size,
        duration_s=duration,
        safe=safe,
        mode=mode,
        offered_msgs_per_s=rate,
        delivered_msgs_per_s=ring_rate,
        delivered_msgs_per_s_sum=sum(n.delivered_per_s for n in per_node),
        mb_per_s=ring_rate * size / 1e6,
        latency_ms_p50=percentile_ms(latencies, 0.50),
        latency_ms_p99=percentile_ms(latencies, 0.99),
        latency_all_ms_p50=percentile_ms(everywhere_us, 0.50),
        latency_all_ms_p99=percentile_ms(everywhere_us, 0.99),
        latency_samples=len(latencies),
        cpu_s_per_1000_msgs=cpu / everywhere * 1000 if everywhere else float("nan"),
        cpu_pct_per_node=_mean(n.cpu_pct for n in per_node),
        cpu_pct_per_node_max=_max(n.cpu_pct for n in per_node),
        rss_peak_mib_max=_max(n.rss_peak_mib for n in per_node),
        rotations_per_s=_median(n.rotations_per_s for n in per_node),
        idle_s=idle_s,
        idle_cpu_pct_per_node=_mean(n.idle_cpu_pct for n in per_node),
        idle_cpu_pct_per_node_max=_max(n.idle_cpu_pct for n in per_node),
        idle_rotations_per_s=_median(n.idle_rotations_per_s for n in per_node),
        loop="uvloop" if uvloop and sys.platform == "linux" else "asyncio",
        security=SECURITY_ON if security else SECURITY_OFF,
        per_node=per_node,
    )
