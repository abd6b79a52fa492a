"""Short fuzz run of every target, for `make test`: a fixed number of
executions each, seeded from its corpus, under the limits of its
``fuzz_<name>.options`` (the settings a continuous job uses); fails on any
finding.

New inputs go to a scratch directory (fuzz/.work/), never into the tracked
corpus; crash inputs land in fuzz/crashes/ with the target's name.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

import targets

# A target that runs longer than this has hung (or the machine is starved):
# either way the smoke run must not block CI.
TARGET_TIMEOUT_S = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20000, help="executions per target")
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    args = parser.parse_args()
    crashes = targets.FUZZ_DIR / "crashes"
    crashes.mkdir(exist_ok=True)
    failed: list[str] = []
    for name in args.targets or targets.names():
        # A target whose executions are expensive (the engine target runs a
        # whole engine per input) sets a lower SMOKE_RUNS of its own.
        runs = min(args.runs, getattr(targets.load(name), "SMOKE_RUNS", args.runs))
        work = targets.FUZZ_DIR / ".work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cmd = [
            sys.executable,
            str(targets.FUZZ_DIR / f"fuzz_{name}.py"),
            *targets.libfuzzer_flags(name),
            f"-runs={runs}",
            f"-artifact_prefix={crashes}/{name}-",
            str(work),
        ]
        seed_dirs = [str(targets.CORPUS_DIR / name), str(targets.REGRESSIONS_DIR / name)]
        cmd += [d for d in seed_dirs if (targets.FUZZ_DIR / d).is_dir()]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=TARGET_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            print(f"fuzz {name}: TIMEOUT after {TARGET_TIMEOUT_S}s")
            failed.append(name)
            continue
        took = time.monotonic() - start
        if proc.returncode != 0:
            print(f"fuzz {name}: FAILED (exit {proc.returncode})\n{proc.stderr[-4000:]}")
            failed.append(name)
        else:
            print(f"fuzz {name}: {runs} runs ok in {took:.1f}s")
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"fuzz smoke: findings in {', '.join(failed)}; inputs saved in {crashes}/")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
