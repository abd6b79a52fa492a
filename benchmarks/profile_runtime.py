"""Where a real node's CPU goes: cProfile and py-spy under ``ringward bench``.

    .venv/bin/python benchmarks/profile_runtime.py [--duration 8] [--top 15]
    .venv/bin/pip install '.[perf]'     # optional: py-spy, a sampling profiler

Three cases, 3 node processes on loopback, security on: a flood of 100 B
messages, a flood of 1 KB messages, and an idle ring (``--idle``: no
messages, then a trickle of 10 msgs/s). For each:

* cProfile (``ringward bench --profile DIR``): every node profiles its own
  window; the statistics of the three nodes are merged and the functions
  with the most *own* time are listed as a share of all profiled time.
  cProfile costs each Python call, so it inflates call-heavy code;
* py-spy, when installed (``py-spy`` next to this interpreter or on PATH;
  needs ptrace, e.g. root): attaches to each node process once the ring
  has formed and samples it without pausing it (``--nonblocking``); the
  share of samples whose innermost Python frame is in each function (time
  in a C function, e.g. ``sendto`` or a signature check, counts for its
  Python caller), leaving out waits (the loop in epoll, the stdin reader
  thread). For the idle ring it samples the idle phase (no messages).

Prints markdown tables for docs/performance.md; figures, never assertions.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

from ringward.cli.bench_run import run_bench

NODES: Final = 3
# py-spy's sampling rate (Hz): high enough for percent-level shares over a
# few seconds, low enough not to steal a core from 3 nodes on 2 vCPUs.
SPY_RATE_HZ: Final = 200
# py-spy attaches to the node processes SPY_SETTLE_S after they appear (the
# ring forms meanwhile) and samples for the requested duration; the bench's
# window is longer by both, plus SPY_MARGIN_S, so the samples fall inside it.
SPY_SETTLE_S: Final = 5.0
SPY_MARGIN_S: Final = 3.0
SPY_FIND_TRIES: Final = 600  # x 0.1 s
# Samples that are waits, not work: the loop in epoll (uvloop's C code under
# Runner.run) and the thread that reads the bench's stdin.
# Frames whose inclusive share is reported: where a node's work starts.
INCLUSIVE: Final = (
    "Driver._on_readable (ringward/runtime/driver.py)",
    "Engine.receive (ringward/engine/engine.py)",
    "Driver._sendto (ringward/runtime/driver.py)",
    "Driver._emit (ringward/runtime/driver.py)",
    "Node.broadcast (ringward/runtime/node.py)",
    "crypto_sign_open (nacl/bindings/crypto_sign.py)",
    "crypto_sign (nacl/bindings/crypto_sign.py)",
    "_Counter.consume (ringward/cli/bench_worker.py)",
)
_WAITING: Final = re.compile(r"Runner\.run \([^)]*\)$|concurrent/futures/thread\.py")


class Case(NamedTuple):
    name: str
    size: int
    idle: bool


CASES: Final = (
    Case("flood, 100 B", 100, False),
    Case("flood, 1 KB", 1024, False),
    Case("idle ring", 100, True),
)


def _where(func: tuple[str, int, str]) -> str:
    path, line, name = func
    if path == "~":  # a C function: cProfile names it "<built-in method ...>"
        return name
    short = re.sub(r"^.*?/(ringward|site-packages|python3\.\d+)/", r"\1/", path)
    return f"{name} ({short}:{line})"


def cprofile_case(case: Case, duration: float, top: int) -> list[tuple[str, float, float]]:
    """(function, % own time, % cumulative) of the merged node profiles."""
    with tempfile.TemporaryDirectory(prefix="profile-runtime-") as tmp:
        run_bench(NODES, case.size, duration, idle=case.idle, profile_dir=Path(tmp))
        files = sorted(str(p) for p in Path(tmp).glob("*.prof"))
        stats = pstats.Stats(files[0])
        for f in files[1:]:
            stats.add(f)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0  # tottime of every function
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return [(_where(func), 100 * v[2] / total, 100 * v[3] / total) for func, v in rows]


def _py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def _children(parent: int) -> list[int]:
    """Pids of ``parent``'s node processes (bench workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and b"bench_worker" in cmdline:
            found.append(int(proc.name))
    return found


def py_spy_case(
    spy: str, case: Case, duration: float, top: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Over ``duration`` seconds inside the window (the idle phase for the
    idle case): (innermost function, % of the node processes' samples), and
    for each of INCLUSIVE the % of samples with it anywhere on the stack."""
    window = duration + SPY_SETTLE_S + SPY_MARGIN_S
    cmd = [sys.executable, "-m", "ringward", "bench", "--nodes", str(NODES)]
    cmd += ["--size", str(case.size), "--duration", repr(window)]
    if case.idle:
        cmd.append("--idle")
    text = []
    with tempfile.TemporaryDirectory(prefix="profile-runtime-") as tmp:
        bench = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(SPY_FIND_TRIES):
                pids = _children(bench.pid)
                if len(pids) == NODES:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("py-spy: the bench's node processes did not appear")
            time.sleep(SPY_SETTLE_S)  # ring formation; then the window runs
            spies = []
            for pid in pids:
                rec = [spy, "record", "--pid", str(pid), "--duration", str(round(duration))]
                rec += ["--rate", str(SPY_RATE_HZ), "--nonblocking", "--format", "raw"]
                rec += ["-o", str(Path(tmp) / f"{pid}.txt")]
                spies.append(subprocess.Popen(rec, stdout=subprocess.DEVNULL))
            for s in spies:
                s.wait(duration + 60)
            bench.wait(window * 2 + 120)
        finally:
            if bench.poll() is None:
                bench.kill()
                bench.wait()
        text = [p.read_text() for p in Path(tmp).glob("*.txt")]
    leaves: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    for line in "\n".join(text).splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or _WAITING.search(stack):
            continue
        frames = [_function(f) for f in stack.split(";")]
        leaves[frames[-1]] += int(count)
        for name in set(frames) & set(INCLUSIVE):
            within[name] += int(count)
    total = sum(leaves.values()) or 1
    own = [(leaf, 100 * n / total) for leaf, n in leaves.most_common(top)]
    return own, [(name, 100 * within[name] / total) for name in INCLUSIVE]


def _function(frame: str) -> str:
    """py-spy's ``name (file:line)`` without the line; generated dataclass
    methods as one entry."""
    if frame.startswith("__create_fn__"):
        return "dataclass __init__/__hash__/__eq__ (generated)"
    return re.sub(r":\d+\)$", ")", frame)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per window")
    ap.add_argument("--top", type=int, default=15, help="functions listed per case")
    ap.add_argument("--no-py-spy", action="store_true", help="cProfile only")
    ap.add_argument("--no-cprofile", action="store_true", help="py-spy only")
    args = ap.parse_args()
    spy = None if args.no_py_spy else _py_spy()
    print(f"{NODES} processes on loopback, security on, {args.duration:g} s windows, ", end="")
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for case in CASES:
        if not args.no_cprofile:
            print(f"\n### {case.name}: cProfile, own time (3 nodes merged)\n")
            print("| function | own % | cumulative % |\n|---|---:|---:|")
            for where, own_pct, cum_pct in cprofile_case(case, args.duration, args.top):
                print(f"| `{where}` | {own_pct:.1f} | {cum_pct:.1f} |")
        if spy is None:
            print("\n(py-spy not installed: pip install '.[perf]')")
            continue
        own, within = py_spy_case(spy, case, args.duration, args.top)
        print(f"\n### {case.name}: py-spy, innermost Python frame (node processes)\n")
        print("| function | samples % |\n|---|---:|")
        for where, share in own:
            print(f"| `{where}` | {share:.1f} |")
        print(f"\n### {case.name}: py-spy, anywhere on the stack\n")
        print("| function | samples % |\n|---|---:|")
        for where, share in within:
            print(f"| `{where}` | {share:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
