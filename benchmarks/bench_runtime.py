"""Runtime throughput and latency on loopback: 3 nodes, one process each.

    .venv/bin/python benchmarks/bench_runtime.py [--messages N] [--size B] [--no-uvloop]

Each node runs in its own process (as in production) with its own event
loop; every node broadcasts N messages of B bytes as fast as backpressure
lets it, and consumes every event. Reported: deliveries per second per node
(from the first delivery to the last), and the latency from broadcast() to
the sender's own delivery (p50/p99) for every message (the sender's queueing
time included, so under a flood this is mostly time spent in the send
queue), then for a light trickle of messages on an idle ring.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ringward.crypto import Identity, KeyDir, ProtocolParams, Roster
from ringward.runtime import Delivered, Node, ViewChanged, new_event_loop


def _node_main(
    roster: Roster, key: str, n: int, size: int, uvloop: bool, q: Any, go: Any, done: Any
) -> None:
    async def main() -> dict[str, Any]:
        node = Node(roster, Identity.load(key))
        async with node:
            async for ev in node.events():
                if isinstance(ev, ViewChanged) and len(ev.members) == len(roster.nodes):
                    break
            q.put(("ready", node.node_id))
            while not go.is_set():  # all processes start the flood together
                await asyncio.sleep(0.01)
            sent: dict[Any, float] = {}
            lat: list[float] = []
            total = n * len(roster.nodes)
            first = last = 0.0
            got = 0

            async def consume() -> None:
                nonlocal first, last, got
                async for ev in node.events():
                    if isinstance(ev, Delivered):
                        now = time.perf_counter()
                        first = first or now
                        last = now
                        got += 1
                        if ev.msg_id in sent:
                            lat.append(now - sent.pop(ev.msg_id))
                        if got >= total:
                            return

            task = asyncio.create_task(consume())
            pad = b"x" * max(0, size - 4)
            for i in range(n):
                t = time.perf_counter()
                sent[await node.broadcast(i.to_bytes(4, "big") + pad)] = t
            await asyncio.wait_for(task, 300)
            # Idle-ring latency: one message at a time.
            trickle: list[float] = []
            for _ in range(50):
                t = time.perf_counter()
                mid = await node.broadcast(b"ping")
                async for ev in node.events():
                    if isinstance(ev, Delivered) and ev.msg_id == mid:
                        trickle.append(time.perf_counter() - t)
                        break
                await asyncio.sleep(0.005)
            st = node.status()
            # Stay in the ring until every node has measured: a node that
            # leaves early costs the others a token timeout.
            with done.get_lock():
                done.value += 1
            while done.value < len(roster.nodes):
                await asyncio.sleep(0.01)
            return {
                "node": node.node_id,
                "rate": got / (last - first) if last > first else 0.0,
                "lat": lat,
                "trickle": trickle,
                "rotations": st.token_rotations_per_s,
                "drops": dict(st.drops),
            }

    with asyncio.Runner(loop_factory=lambda: new_event_loop(prefer_uvloop=uvloop)) as r:
        q.put(("done", r.run(main())))


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000, help="per node")
    ap.add_argument("--size", type=int, default=100, help="payload bytes")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kd = KeyDir(Path(tmp) / "keys")
        roster = kd.init(
            "bench",
            [(f"node{i}", f"127.0.0.1:{27400 + i}") for i in range(1, 4)],
            params=ProtocolParams(token_timeout_ms=1000),
        )
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        go = ctx.Event()
        done = ctx.Value("i", 0)
        procs = [
            ctx.Process(
                target=_node_main,
                args=(
                    roster,
                    str(kd.node_key(f"node{i}")),
                    args.messages,
                    args.size,
                    not args.no_uvloop,
                    q,
                    go,
                    done,
                ),
            )
            for i in range(1, 4)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            q.get(timeout=60)
        go.set()
        results = [q.get(timeout=600)[1] for _ in procs]
        for p in procs:
            p.join(60)
    loop = "asyncio" if args.no_uvloop else "uvloop"
    print(f"3 processes on loopback, {loop}, {args.messages} x {args.size} B per node")
    for r in sorted(results, key=lambda r: r["node"]):
        print(
            f"node{r['node']}: {r['rate']:>9,.0f} deliveries/s  "
            f"flood latency p50 {_pct(r['lat'], 0.5):7.1f} ms p99 {_pct(r['lat'], 0.99):7.1f} ms  "
            f"idle p50 {_pct(r['trickle'], 0.5):5.2f} ms p99 {_pct(r['trickle'], 0.99):5.2f} ms  "
            f"rotations/s {r['rotations']:.0f}"
        )
    print(
        f"mean {statistics.mean(r['rate'] for r in results):,.0f} deliveries/s per node; "
        f"drops {[r['drops'] for r in results]}"
    )


if __name__ == "__main__":
    main()
