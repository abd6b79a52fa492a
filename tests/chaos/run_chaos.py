"""Run chaos scenarios by hand: ``python tests/chaos/run_chaos.py [NAME ...]
[--seed N] [--keep DIR]`` (as root; ``--list`` names them). Prints one line
per scenario; a failing run's logs, merged log and timeline are kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from chaoskit.netns import can_make_namespaces
from chaoskit.nft import nft_missing
from chaoskit.runner import run_scenario
from chaoskit.scenarios import SCENARIOS, by_name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("names", nargs="*", help="scenarios (default: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", type=Path, help="keep failing runs here")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = p.parse_args(argv)
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:<24} nodes={sc.nodes} faults: {sc.describe()}")
        return 0
    why = can_make_namespaces() or nft_missing()
    if why is not None:
        print(f"cannot run the chaos suite: {why}", file=sys.stderr)
        return 2
    failed = 0
    for name in args.names or [sc.name for sc in SCENARIOS]:
        result = run_scenario(by_name(name), args.seed, keep=args.keep)
        print(result.line(), flush=True)
        if not result.ok:
            failed += 1
            print(result.details())
            print(f"logs kept in {result.logdir}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
