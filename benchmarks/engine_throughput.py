"""How many message deliveries per second one engine handles on one core.

N engines run in one process, wired by an in-memory FIFO network (no loss,
no latency: this measures the engine, not a network model). Every node
keeps its send queue topped up. Only the time spent inside engine calls is
counted, so the figure is the engine's own cost: deliveries across all
engines divided by the CPU seconds spent in them, i.e. the delivery rate one
engine sustains on one core. A benchmark, not a test: nothing is asserted.

    .venv/bin/python benchmarks/engine_throughput.py [--seconds 3] [--json]

Each case runs with security off (NullSecurity) and on (RingSecurity:
Ed25519 tokens verified by every member, AES-256-GCM payloads).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque

from ringward.engine import Delivered, Engine, EngineConfig
from ringward.sim.keys import SimKeys

# Messages each node keeps queued: enough that every token visit is full.
QUEUE_TARGET = 400


def run(
    nodes: int, size: int, seconds: float, config: EngineConfig, *, secure: bool
) -> dict[str, float]:
    ids = tuple(range(1, nodes + 1))
    keys = SimKeys(1, ids) if secure else None
    engines = {
        i: Engine(i, ids, config=config, security=keys.security(i) if keys else None) for i in ids
    }
    wire: deque[tuple[int, bytes]] = deque()
    timers: dict[int, float | None] = {}
    now = 0.0
    spent = 0.0
    delivered = 0
    payload = bytes(size)

    def drain(i: int) -> None:
        nonlocal delivered
        ready = engines[i].ready()
        for out in ready.datagrams:
            for dest in ids if out.dest is None else (out.dest,):
                if dest != i:
                    wire.append((dest, out.data))
        delivered += sum(isinstance(e, Delivered) for e in ready.events)
        timers[i] = ready.deadline

    for i in ids:
        drain(i)
    wall_end = time.perf_counter() + seconds * 3  # bound: formation + measurement
    measuring_from: tuple[float, int] | None = None
    while time.perf_counter() < wall_end:
        formed = all(e.view and len(e.members) == nodes for e in engines.values())
        if measuring_from is None and formed:
            measuring_from = (spent, delivered)
        if measuring_from is not None and spent - measuring_from[0] >= seconds:
            break
        t0 = time.perf_counter()
        for i, e in engines.items():
            while len(e.sendq) < QUEUE_TARGET and e.view:
                e.submit(now, payload)
            drain(i)
        for _ in range(len(wire)):
            dest, data = wire.popleft()
            engines[dest].receive(now, data)
            drain(dest)
        due = [t for t in timers.values() if t is not None]
        if not wire and due:
            now = max(now, min(due))
        else:
            now += 0.0001  # time moves on, as it does while datagrams travel
        for i, e in engines.items():
            at = timers.get(i)
            if at is not None and at <= now:
                e.tick(now)
                drain(i)
        spent += time.perf_counter() - t0
    if measuring_from is None:
        raise SystemExit(f"{nodes} nodes never formed a ring")
    cpu = spent - measuring_from[0]
    count = delivered - measuring_from[1]
    return {
        "nodes": nodes,
        "size": size,
        "security": secure,
        "deliveries_per_engine_s": count / cpu,
        "mb_per_engine_s": count * size / cpu / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per case")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 5], help="ring sizes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1024], help="payload bytes")
    parser.add_argument("--security", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()
    config = EngineConfig()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.security]
    rows = [
        run(n, size, args.seconds, config, secure=secure)
        for n in args.nodes
        for size in args.sizes
        for secure in modes
    ]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'nodes':>5} {'payload':>8} {'security':>8} {'deliveries/s/engine':>20} {'MB/s':>7}")
    for r in rows:
        print(
            f"{r['nodes']:>5} {r['size']:>7}B {'on' if r['security'] else 'off':>8}"
            f" {r['deliveries_per_engine_s']:>20,.0f} {r['mb_per_engine_s']:>7.1f}"
        )


if __name__ == "__main__":
    main()
