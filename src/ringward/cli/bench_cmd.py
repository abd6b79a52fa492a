"""``ringward bench``: throughput, latency and CPU of real nodes on loopback.

Starts N node processes on 127.0.0.1 (one UDP socket each, uvloop), has
every node send SIZE-byte messages for DURATION seconds (as fast as
backpressure allows, or at a fixed total --rate), and reports delivered
messages/s per node and for the ring, MB/s, latency from broadcast() to the
sender's own delivery (p50, p99; at a fixed rate also to the last node's
delivery), CPU per node (% of one core, and seconds per 1,000 messages),
peak resident memory per node and token rotations/s. ``--idle`` measures
the cost of an idle ring first (no messages: CPU per node, rotations/s),
then a trickle of 10 messages/s across the ring (or ``--rate``) for the
latency of a message broadcast on an idle ring.
Frame security is on by default, as in the runtime (Ed25519-signed
tokens, AES-256-GCM payloads); ``--security off`` measures the crash-fault
model (NullSecurity) for reference.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ringward.cli import keys_more
from ringward.cli.bench_run import BenchResult, run_bench

__all__ = ["register", "run"]

_EPILOG = """\
examples:
  ringward bench --nodes 3 --size 100 --duration 5          # flood: throughput
  ringward bench --nodes 3 --size 100 --duration 5 --rate 300   # light load: latency
  ringward bench --nodes 5 --size 1024 --duration 5 --json
  ringward bench --nodes 3 --size 100 --duration 5 --security off   # reference
  ringward bench --nodes 3 --duration 10 --idle          # idle ring: CPU, rotations, latency

--json prints one object: nodes, size, duration_s, mode (flood, rate, idle),
delivered_msgs_per_s (the lowest per-node rate: what the whole ring agrees
on), latency_ms_p50, latency_ms_p99 (self-delivery), latency_all_ms_p50,
latency_all_ms_p99 (delivered at every node; fixed rate only, else null),
cpu_s_per_1000_msgs (all processes' CPU per 1,000 messages delivered
everywhere), cpu_pct_per_node (mean, % of one core) and _max, rss_peak_mib_max,
rotations_per_s, idle_s, idle_cpu_pct_per_node, idle_rotations_per_s (idle
phase; null without --idle), mb_per_s, per_node, ...
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput, latency and CPU of N real nodes on loopback",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nodes", type=int, default=3, help="node processes, 2..32 (default 3)")
    p.add_argument(
        "--size",
        type=int,
        default=100,
        help="payload bytes, up to 16 MiB (default 100; above the roster's 64 KiB "
        "default the bench roster allows it)",
    )
    p.add_argument("--duration", type=float, default=5.0, help="seconds of sending (default 5)")
    p.add_argument("--safe", action="store_true", help="send with safe delivery")
    p.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="offer R messages/s across the ring instead of flooding",
    )
    p.add_argument(
        "--security",
        choices=("on", "off"),
        default="on",
        help="frame security: on (the runtime's default, signed and encrypted) or off "
        "(NullSecurity, for reference)",
    )
    p.add_argument(
        "--idle",
        action="store_true",
        help="first DURATION s of an idle ring (no messages), then a trickle of 10 msgs/s "
        "(or --rate) for latency on an idle ring",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="write each node's cProfile statistics of the window to DIR/NAME.prof "
        "(read them with python -m pstats); the profiler slows the nodes down",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    keys_more.add_param_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The verb: run the benchmark and print the result."""
    result = run_bench(
        args.nodes,
        args.size,
        args.duration,
        safe=args.safe,
        rate=args.rate,
        uvloop=not args.no_uvloop,
        security=args.security == "on",
        idle=args.idle,
        profile_dir=args.profile,
        params=keys_more.params_from_args(args, None),
    )
    if args.json:
        print(json.dumps(_finite(result.to_json())))
    else:
        print(format_result(result))
    return 0


def _finite(obj: Any) -> Any:
    """NaN (no sample) as null: strict JSON has no NaN."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def format_result(r: BenchResult) -> str:
    """The human-readable report."""
    load = "flood" if r.offered_msgs_per_s is None else f"{r.offered_msgs_per_s:g} msg/s offered"
    lines = [
        f"{r.nodes} processes on loopback, {r.loop}, {r.size} B payloads, {load}, "
        f"{r.duration_s:g} s{', safe delivery' if r.safe else ''}",
        f"security: {r.security}",
    ]
    if r.params:
        lines.append("protocol parameters: " + ", ".join(f"{k}={v}" for k, v in r.params.items()))
    if r.idle_s:
        lines.append(
            f"idle ring ({r.idle_s:g} s, no messages): cpu {r.idle_cpu_pct_per_node:.1f}% of a "
            f"core per node (max {r.idle_cpu_pct_per_node_max:.1f}%), "
            f"{r.idle_rotations_per_s:.0f} rotations/s"
        )
    for n in r.per_node:
        idle = "" if math.isnan(n.idle_cpu_pct) else f"  idle cpu {n.idle_cpu_pct:5.1f}%"
        lines.append(
            f"  node{n.node}: sent {n.sent:>8,}  delivered {n.delivered_per_s:>10,.0f} msg/s  "
            f"cpu {n.cpu_pct:5.1f}%  rss {n.rss_peak_mib:6.1f} MiB  "
            f"rotations {n.rotations_per_s:6.0f}/s{idle}"
        )
    lines += [
        f"ring: {r.delivered_msgs_per_s:,.0f} msg/s delivered at every node "
        f"({r.mb_per_s:.2f} MB/s); {r.delivered_msgs_per_s_sum:,.0f} deliveries/s summed; "
        f"{r.rotations_per_s:.0f} rotations/s",
        f"latency broadcast -> own delivery: p50 {_ms(r.latency_ms_p50)} ms, "
        f"p99 {_ms(r.latency_ms_p99)} ms ({r.latency_samples:,} messages)",
    ]
    if not math.isnan(r.latency_all_ms_p50):
        lines.append(
            f"latency broadcast -> delivered at every node: p50 {_ms(r.latency_all_ms_p50)} ms, "
            f"p99 {_ms(r.latency_all_ms_p99)} ms"
        )
    lines += [
        f"cpu: {r.cpu_pct_per_node:.1f}% of a core per node (max {r.cpu_pct_per_node_max:.1f}%); "
        f"{r.cpu_s_per_1000_msgs:.3f} s per 1,000 messages (all processes)",
        f"memory: peak resident {r.rss_peak_mib_max:.1f} MiB (largest node)",
    ]
    return "\n".join(lines)
