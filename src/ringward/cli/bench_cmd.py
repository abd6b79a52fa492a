"""``ringward bench``: throughput, latency and CPU of real nodes on loopback.

Starts N node processes on 127.0.0.1 (one UDP socket each, uvloop), has
every node send SIZE-byte messages for DURATION seconds (as fast as
backpressure allows, or at a fixed total --rate), and reports delivered
messages/s per node and for the ring, MB/s, latency from broadcast() to the
sender's own delivery (p50, p99), and CPU seconds per 1,000 messages.
Frame security is on by default, as in the runtime (Ed25519-signed
tokens, AES-256-GCM payloads); ``--security off`` measures the crash-fault
model (NullSecurity) for reference.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from ringward.cli.bench_run import BenchResult, run_bench

__all__ = ["register", "run"]

_EPILOG = """\
examples:
  ringward bench --nodes 3 --size 100 --duration 5          # flood: throughput
  ringward bench --nodes 3 --size 100 --duration 5 --rate 300   # light load: latency
  ringward bench --nodes 5 --size 1024 --duration 5 --json
  ringward bench --nodes 3 --size 100 --duration 5 --security off   # reference

--json prints one object: nodes, size, duration_s, delivered_msgs_per_s (the
lowest per-node rate: what the whole ring agrees on), latency_ms_p50,
latency_ms_p99, cpu_s_per_1000_msgs (all processes' CPU per 1,000 messages
delivered everywhere), mb_per_s, per_node, ...
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
    p.add_argument("--size", type=int, default=100, help="payload bytes (default 100)")
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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
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


def format_result(r: BenchResult) -> str:
    """The human-readable report."""
    load = "flood" if r.offered_msgs_per_s is None else f"{r.offered_msgs_per_s:g} msg/s offered"
    lines = [
        f"{r.nodes} processes on loopback, {r.loop}, {r.size} B payloads, {load}, "
        f"{r.duration_s:g} s{', safe delivery' if r.safe else ''}",
        f"security: {r.security}",
    ]
    for n in r.per_node:
        lines.append(
            f"  node{n.node}: sent {n.sent:>8,}  delivered {n.delivered_per_s:>10,.0f} msg/s  "
            f"cpu {n.cpu_s:5.2f} s  rotations {n.rotations_per_s:6.0f}/s"
        )
    lines += [
        f"ring: {r.delivered_msgs_per_s:,.0f} msg/s delivered at every node "
        f"({r.mb_per_s:.2f} MB/s); {r.delivered_msgs_per_s_sum:,.0f} deliveries/s summed",
        f"latency broadcast -> own delivery: p50 {r.latency_ms_p50:.2f} ms, "
        f"p99 {r.latency_ms_p99:.2f} ms",
        f"cpu: {r.cpu_s_per_1000_msgs:.3f} s per 1,000 messages (all processes)",
    ]
    return "\n".join(lines)
