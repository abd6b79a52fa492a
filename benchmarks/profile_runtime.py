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
  needs ptrace, e.g. root): samples every process of the run
  (``--subprocesses``) without slowing it, only threads holding the GIL
  (``--gil``: waiting in epoll is not counted); the share of samples whose
  innermost Python frame is in each function, node processes only (time in
  a C function, e.g. ``sendto``, counts for its Python caller). Start-up and
  ring formation are inside py-spy's recording, so the window should be
  long compared with them (a few seconds).

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
from pathlib import Path
from typing import Any, Final, NamedTuple

from ringward.cli.bench_run import run_bench

NODES: Final = 3
# py-spy's sampling rate (Hz): high enough for percent-level shares over a
# few seconds, low enough not to steal a core from 3 nodes on 2 vCPUs.
SPY_RATE_HZ: Final = 200
_PROCESS: Final = re.compile(r'process \d+:"([^"]*)";')


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


def py_spy_case(spy: str, case: Case, duration: float, top: int) -> list[tuple[str, float]]:
    """(innermost function, % of node-process samples)."""
    with tempfile.TemporaryDirectory(prefix="profile-runtime-") as tmp:
        out = Path(tmp) / "raw.txt"
        # --gil: only threads holding the GIL, so a loop waiting in epoll (uvloop
        # releases the GIL there) and the stdin reader thread are not counted.
        cmd = [spy, "record", "--subprocesses", "--gil", "--format", "raw"]
        cmd += ["--rate", str(SPY_RATE_HZ)]
        cmd += ["-o", str(out), "--", sys.executable, "-m", "ringward", "bench"]
        cmd += ["--nodes", str(NODES), "--size", str(case.size), "--duration", repr(duration)]
        if case.idle:
            cmd.append("--idle")
        subprocess.run(cmd, check=True, capture_output=True, timeout=duration * 3 + 300)
        text = out.read_text()
    leaves: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        # Each stack starts with its process chain: process PID:"cmdline";...
        chain = list(_PROCESS.finditer(stack))
        if not chain or "bench_worker" not in chain[-1].group(1) or not count.isdigit():
            continue  # the parent process, not a node
        leaves[stack[chain[-1].end() :].rsplit(";", 1)[-1]] += int(count)
    total = sum(leaves.values()) or 1
    return [(leaf, 100 * n / total) for leaf, n in leaves.most_common(top)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per window")
    ap.add_argument("--top", type=int, default=15, help="functions listed per case")
    ap.add_argument("--no-py-spy", action="store_true", help="cProfile only")
    args = ap.parse_args()
    spy = None if args.no_py_spy else _py_spy()
    print(f"{NODES} processes on loopback, security on, {args.duration:g} s windows, ", end="")
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for case in CASES:
        print(f"\n### {case.name}: cProfile, own time (3 nodes merged)\n")
        print("| function | own % | cumulative % |\n|---|---:|---:|")
        for where, own, cum in cprofile_case(case, args.duration, args.top):
            print(f"| `{where}` | {own:.1f} | {cum:.1f} |")
        if spy is None:
            print("\n(py-spy not installed: pip install '.[perf]')")
            continue
        print(f"\n### {case.name}: py-spy, innermost frame (node processes)\n")
        print("| function | samples % |\n|---|---:|")
        for where, share in py_spy_case(spy, case, args.duration, args.top):
            print(f"| `{where}` | {share:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
