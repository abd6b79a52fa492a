"""Detection time per Byzantine behaviour (docs/fault-detector.md).

Runs every behaviour of ringward/byzantine on secured rings for a few seeds
and prints, per behaviour, the virtual seconds from the start of the
misbehaviour to the first eviction of the node by a correct member (min,
median, max), and whether every run held its expectation.

    python benchmarks/detection_times.py [--nodes 4] [--seeds 3] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import statistics

from ringward.byzantine import BEHAVIOURS, EXPECT, TARGETED, parse_spec
from ringward.sim.byzantine import NEEDS_FAULTS, run_byzantine
from ringward.sim.faults import FaultSpec
from ringward.sim.runner import Scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--only", default="", help="comma-separated behaviours (default: all)")
    args = ap.parse_args()
    only = [b for b in args.only.split(",") if b] or list(BEHAVIOURS)
    unknown = sorted(set(only) - set(BEHAVIOURS))
    if unknown:
        ap.error(f"unknown behaviours {unknown}; behaviours are {', '.join(BEHAVIOURS)}")
    n = args.nodes
    print(f"| behaviour | expected | runs held | detection s min / median / max ({n} nodes) |")
    print("|---|---|---|---|")
    for name in only:
        spec = f"{n}:{name}" if name not in TARGETED else f"{n}:{name}:1"
        times, held = [], 0
        for seed in range(1, args.seeds + 1):
            sc = Scenario(
                nodes=n,
                seed=seed,
                duration=args.duration,
                rate=50.0,
                security=True,
                faults=FaultSpec.parse(NEEDS_FAULTS.get(name, "none")),
            )
            out = run_byzantine(sc, parse_spec(spec, n))
            held += out.held
            if n in out.detected_s:
                times.append(out.detected_s[n])
        span = (
            f"{min(times):.3f} / {statistics.median(times):.3f} / {max(times):.3f}"
            if times
            else "-"
        )
        print(f"| {spec} | {EXPECT[name]} | {held}/{args.seeds} | {span} |")


if __name__ == "__main__":
    main()
