"""CPU per message of the runtime's own per-message paths, in one process.

    .venv/bin/python benchmarks/runtime_paths.py [--events 100000] [--repeat 5]

Times ``Driver._emit`` (an engine ``Delivered`` handed to the application:
conversion, telemetry, the event queue) on a node that is built but not
started, so neither the engine nor the network is measured: the figure is
the runtime's share of each delivery, which a flood pays once per message
at every node. Best of ``--repeat`` runs, in µs per event. To compare two
trees, run it with each on ``PYTHONPATH``, alternately.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ringward.cli.demo_cluster import provision
from ringward.crypto import Identity, KeyDir
from ringward.engine.api import Delivered, MessageId
from ringward.runtime import Node


def emit_us(events: int, repeat: int) -> float:
    """Best µs per ``_emit`` of a delivery (own messages: latency recorded)."""
    with tempfile.TemporaryDirectory(prefix="runtime-paths-") as tmp:
        roster = provision(Path(tmp), 3, cluster="paths")
        node = Node(roster, Identity.load(KeyDir(Path(tmp)).node_key("node1")))
    best = float("inf")
    for _ in range(repeat):
        batch = [
            Delivered("R1.4", i, MessageId(1 + i % 3, i), b"x" * 100, False) for i in range(events)
        ]
        for d in batch:
            if d.msg_id.sender == 1:
                node.telemetry.sent(d.msg_id, 100, 0.0)
        node._events.clear()
        t0 = time.process_time()
        for d in batch:
            node._emit(d)
        best = min(best, (time.process_time() - t0) / events * 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events per run")
    ap.add_argument("--repeat", type=int, default=5, help="runs (the best is kept)")
    args = ap.parse_args()
    import ringward

    print(f"ringward from {Path(ringward.__file__).parent}, Python {sys.version.split()[0]}")
    print(f"Driver._emit, delivery: {emit_us(args.events, args.repeat):.2f} µs per event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
