"""ringward vs pysyncobj, side by side on this machine, in one run.

    .venv/bin/pip install pysyncobj        # prerequisite; not a dependency of ringward
    .venv/bin/python benchmarks/compare_pysyncobj.py [--duration 5] [--sizes 100,1024]

Both systems run 3 processes on 127.0.0.1 and deliver every operation in
one order at every node:

* ringward: ``ringward bench`` (ringward.cli.bench_run): every node
  broadcasts; throughput is the lowest per-node delivery rate; latency is
  broadcast() to the sender's own delivery. Security **on**, the runtime's
  default (RingSecurity: Ed25519-signed tokens, AES-256-GCM payloads); a
  reference run with security off (NullSecurity) is printed beside it.
* pysyncobj (Raft over TCP) with its password encryption on: each process
  holds a SyncObj whose ``@replicated`` method appends to a replicated log
  (a counter of applied payloads); every node submits. Throughput is the
  lowest per-node rate of operations *applied* (committed and applied at
  that node); latency at light load is a ``sync=True`` call (returns once
  the operation is applied at the caller).

Flood: every node keeps submitting (pysyncobj: up to --inflight operations
outstanding per node). Light load: --light-rate operations/s across the
cluster, for latency. Figures go to docs/performance.md ("ringward vs
pysyncobj"); they are measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

PASSWORD = "compare-pysyncobj"  # a benchmark's throw-away password
NODES = 3


# ----------------------------------------------------------- pysyncobj child


def _child(args: argparse.Namespace) -> None:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    # pysyncobj has no type information; its decorator keeps the signature.
    replicated_t = cast("Callable[[Callable[..., int]], Callable[..., int]]", replicated)
    ports = [int(p) for p in args.ports.split(",")]
    me = f"127.0.0.1:{ports[args.child]}"
    partners = [f"127.0.0.1:{p}" for i, p in enumerate(ports) if i != args.child]
    window = {"end": float("inf"), "applied": 0, "total": 0}

    class Log(SyncObj):  # type: ignore[misc]
        def __init__(self) -> None:
            conf = SyncObjConf(
                password=PASSWORD,
                appendEntriesUseBatch=True,
                dynamicMembershipChange=False,
                commandsWaitLeader=True,
            )
            super().__init__(me, partners, conf)
            self.count = 0

        @replicated_t
        def append(self, data: bytes) -> int:
            # Runs at every node, in log order, once committed.
            self.count += 1
            window["total"] += 1
            if time.perf_counter() <= window["end"]:
                window["applied"] += 1
            return self.count

    obj = Log()

    def emit(o: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(o) + "\n")
        sys.stdout.flush()

    deadline = time.monotonic() + 60
    while not (obj.isReady() and obj._getLeader() is not None):
        if time.monotonic() > deadline:
            emit({"error": "no leader in 60 s"})
            return
        time.sleep(0.05)
    emit({"ready": args.child})
    if sys.stdin.readline().strip() != "go":
        return
    payload = b"x" * args.size
    lat: list[float] = []
    sent = 0
    failed = 0
    start = time.perf_counter()
    end = start + args.duration
    window["end"] = end
    cpu0 = sum(os.times()[:2])
    if args.mode == "flood":
        room = threading.BoundedSemaphore(args.inflight)
        lock = threading.Lock()

        def done(t: float) -> Any:
            def cb(result: Any, error: Any) -> None:
                nonlocal failed
                with lock:
                    if error == 0:  # FAIL_REASON.SUCCESS
                        lat.append(time.perf_counter() - t)
                    else:
                        failed += 1
                room.release()

            return cb

        while time.perf_counter() < end:
            if not room.acquire(timeout=0.1):
                continue
            obj.append(payload, callback=done(time.perf_counter()))
            sent += 1
        # Wait for outstanding callbacks (bounded).
        for _ in range(args.inflight):
            if not room.acquire(timeout=30):
                break
    else:
        period = NODES / args.light_rate
        next_at = start
        while time.perf_counter() < end:
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += period
            t = time.perf_counter()
            try:
                obj.append(payload, sync=True, timeout=10)
            except Exception:  # SyncObjException: timeout, no quorum
                failed += 1
            else:
                lat.append(time.perf_counter() - t)
            sent += 1
    cpu = sum(os.times()[:2]) - cpu0
    time.sleep(max(0.0, end - time.perf_counter()))
    emit(
        {
            "result": {
                "node": args.child,
                "leader": bool(obj._isLeader()),
                "sent": sent,
                "failed": failed,
                "applied_in_window": window["applied"],
                "cpu_s": cpu,
                "latencies_us": [round(x * 1e6) for x in lat],
            }
        }
    )
    sys.stdin.readline()  # stay in the cluster until every node reported
    obj.destroy()


# ----------------------------------------------------------- pysyncobj parent


def _free_tcp_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pct(sorted_us: list[int], p: float) -> float:
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, int(len(sorted_us) * p))] / 1000


def run_pysyncobj(
    size: int, duration: float, mode: str, args: argparse.Namespace
) -> dict[str, Any]:
    ports = ",".join(map(str, _free_tcp_ports(NODES)))
    procs: list[subprocess.Popen[bytes]] = []
    lines: list[queue.Queue[Any]] = []

    def reader(p: subprocess.Popen[bytes], q: queue.Queue[Any]) -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            with contextlib.suppress(ValueError):
                q.put(json.loads(raw))
        q.put(None)

    def expect(q: queue.Queue[Any], key: str, timeout: float) -> Any:
        obj = q.get(timeout=timeout)
        if not isinstance(obj, dict) or key not in obj:
            raise RuntimeError(f"pysyncobj child: expected {key}, got {obj}")
        return obj[key]

    try:
        for i in range(NODES):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(i),
                "--ports",
                ports,
                "--size",
                str(size),
                "--duration",
                str(duration),
                "--mode",
                mode,
                "--inflight",
                str(args.inflight),
                "--light-rate",
                str(args.light_rate),
            ]
            p = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
            )
            q: queue.Queue[Any] = queue.Queue()
            threading.Thread(target=reader, args=(p, q), daemon=True).start()
            procs.append(p)
            lines.append(q)
        for q in lines:
            expect(q, "ready", 90)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        results = [expect(q, "result", duration + 120) for q in lines]
        for p in procs:
            assert p.stdin is not None
            with contextlib.suppress(OSError):
                p.stdin.write(b"exit\n")
                p.stdin.flush()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    lat = sorted(us for r in results for us in r["latencies_us"])
    leader = sorted(us for r in results if r["leader"] for us in r["latencies_us"])
    everywhere = min(r["applied_in_window"] for r in results)
    return {
        "ops_per_s": everywhere / duration,
        "p50_ms": _pct(lat, 0.5),
        "p99_ms": _pct(lat, 0.99),
        "leader_p50_ms": _pct(leader, 0.5),
        "cpu_s_per_1000": sum(r["cpu_s"] for r in results) / everywhere * 1000
        if everywhere
        else float("nan"),
        "failed": sum(r["failed"] for r in results),
    }


# ------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    ap.add_argument("--sizes", default="100,1024", help="payload sizes, comma-separated")
    ap.add_argument("--inflight", type=int, default=1000, help="pysyncobj: outstanding per node")
    ap.add_argument("--light-rate", type=float, default=300.0, help="ops/s, light load")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="flood", help=argparse.SUPPRESS)
    args = ap.parse_args()
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        print(
            "compare_pysyncobj: pysyncobj is not installed; it is not a ringward dependency.\n"
            "Install it first:  .venv/bin/pip install pysyncobj",
            file=sys.stderr,
        )
        return 2
    if args.child is not None:
        _child(args)
        return 0
    from ringward.cli.bench_run import run_bench

    print(
        f"3 processes each on 127.0.0.1, {args.duration:g} s per measurement, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print("ringward: security ON (RingSecurity, the default), UDP, uvloop;")
    print("          'off' rows: NullSecurity (no signatures, no encryption), reference only")
    print("pysyncobj: password encryption ON, TCP, Raft (a leader orders every operation)")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rw = run_bench(NODES, size, args.duration)
        rw_off = run_bench(NODES, size, args.duration, security=False)
        rw_light = run_bench(NODES, size, args.duration, rate=args.light_rate)
        ps = run_pysyncobj(size, args.duration, "flood", args)
        ps_light = run_pysyncobj(size, args.duration, "sync", args)
        rows.append((size, rw, rw_light, ps, ps_light, rw_off))
        print(
            f"\n{size} B payloads\n"
            f"  flood, ops/s delivered/applied at every node: ringward "
            f"{rw.delivered_msgs_per_s:>9,.0f}   pysyncobj {ps['ops_per_s']:>9,.0f}   "
            f"ratio {rw.delivered_msgs_per_s / max(ps['ops_per_s'], 1e-9):5.1f}x   "
            f"(ringward security off: {rw_off.delivered_msgs_per_s:,.0f})\n"
            f"  flood latency p50/p99 ms:   ringward {rw.latency_ms_p50:8.1f} / "
            f"{rw.latency_ms_p99:8.1f}   pysyncobj {ps['p50_ms']:8.1f} / {ps['p99_ms']:8.1f}\n"
            f"  light load ({args.light_rate:g} ops/s) latency p50/p99 ms: ringward "
            f"{rw_light.latency_ms_p50:6.2f} / {rw_light.latency_ms_p99:6.2f}   "
            "pysyncobj sync=True "
            f"{ps_light['p50_ms']:6.2f} / {ps_light['p99_ms']:6.2f}   "
            f"ratio p50 {ps_light['p50_ms'] / max(rw_light.latency_ms_p50, 1e-9):5.1f}x "
            f"(pysyncobj p50 of calls made at the leader: {ps_light['leader_p50_ms']:.2f})\n"
            f"  cpu s per 1,000 ops (all processes, flood): ringward "
            f"{rw.cpu_s_per_1000_msgs:.3f}   pysyncobj {ps['cpu_s_per_1000']:.3f}"
            + (f"\n  pysyncobj failed operations: {ps['failed']}" if ps["failed"] else "")
        )
    print("\nsummary (ops/s at every node; latency p50 at light load)")
    print(
        f"{'size':>6} {'ringward':>10} {'pysyncobj':>10} {'ratio':>6} {'rw p50':>8} {'ps p50':>8}"
    )
    for size, rw, rw_light, ps, ps_light, _ in rows:
        print(
            f"{size:>6} {rw.delivered_msgs_per_s:>10,.0f} {ps['ops_per_s']:>10,.0f} "
            f"{rw.delivered_msgs_per_s / max(ps['ops_per_s'], 1e-9):>5.1f}x "
            f"{rw_light.latency_ms_p50:>7.2f}ms {ps_light['p50_ms']:>7.2f}ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
