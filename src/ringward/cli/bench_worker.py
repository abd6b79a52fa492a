"""One node of ``ringward bench``: a child process, driven over stdin/stdout.

Run by :mod:`ringward.cli.bench_run` as
``python -m ringward.cli.bench_worker --keys DIR --name NODE ...``. The
conversation, one JSON object or word per line:

1. the worker starts its node and, once a regular view holds every roster
   node, prints ``{"ready": NODE_ID}``;
2. it waits for ``go`` on stdin, then sends for ``--duration`` seconds
   (as fast as backpressure allows, or ``--rate`` messages/s) while
   counting every delivery; afterwards it keeps consuming until its own
   messages are all delivered (so every latency is measured);
3. it prints ``{"result": {...}}`` and stays in the ring until ``exit``
   (or the end of stdin): a node that left early would cost the others a
   token timeout in the middle of their measurement.

``--security off`` runs the crash-fault model (NullSecurity) for reference;
the default is the runtime's own (RingSecurity). CPU time is the process's
own (user + system, ``time.process_time``) over the sending window, so it covers
protocol, crypto, sockets and the benchmark loop; the peak resident size is
its ``ru_maxrss``. ``--idle S`` first measures S seconds of an idle ring (no
messages: CPU and token rotations). ``--record`` stamps every send and
delivery (up to ``RECORD_MAX`` of each) for the all-delivered latency; at a
fixed rate the nodes' first sends are staggered over one period so that
their messages do not meet on the ring. ``--profile DIR`` runs cProfile
from ``go`` to the end of the window (idle phase included) and writes
``DIR/NAME.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Final

from ringward.crypto.identity import Identity
from ringward.crypto.keydir import KeyDir
from ringward.crypto.roster import Roster
from ringward.engine import FrameSecurity, NullSecurity
from ringward.engine.api import MessageId
from ringward.runtime import Delivered, Node, ViewChanged, new_event_loop

# Bounds on every wait (seconds): forming the ring on a loaded machine, the
# go signal, and draining the send queue after the window (a full queue of
# 10,000 messages of 64 KiB drains in well under this).
FORM_TIMEOUT_S: Final = 60.0
DRAIN_TIMEOUT_S: Final = 60.0
# Stamps kept for the all-delivered latency: a fixed-rate run of minutes at
# thousands of messages/s stays under it, and the report stays a few MB.
RECORD_MAX: Final = 100_000


def _cpu_s() -> float:
    # Not os.times(): its clock ticks (10 ms) round an idle node's 2 s to 0.
    return time.process_time()


async def _stdin_line() -> str:
    """One line of stdin without blocking the loop ('' at the end)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, sys.stdin.readline)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _us(t_s: float) -> int:
    return round(t_s * 1e6)


class _Counter:
    """Deliveries inside the window, and latency of our own messages."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.sends_us: list[tuple[int, int]] = []
        self.deliveries_us: list[tuple[int, int, int]] = []
        self.window_end = float("inf")
        self.in_window = 0
        self.total = 0
        self.submitted: dict[MessageId, float] = {}
        self.latencies_us: list[int] = []
        self.all_own_delivered = asyncio.Event()
        self.sending_done = False

    async def consume(self, node: Node) -> None:
        async for event in node.events():
            if not isinstance(event, Delivered):
                continue
            now = time.perf_counter()
            if self.record and len(self.deliveries_us) < RECORD_MAX:
                self.deliveries_us.append((event.sender, event.msg_id.msg_no, _us(now)))
            self.total += 1
            if now <= self.window_end:
                self.in_window += 1
            sent = self.submitted.pop(event.msg_id, None)
            if sent is not None:
                self.latencies_us.append(round((now - sent) * 1e6))
                if self.sending_done and not self.submitted:
                    self.all_own_delivered.set()


async def _send(
    node: Node, counter: _Counter, args: argparse.Namespace, end: float, stagger: float
) -> int:
    """Send until ``end``; at a fixed rate the first send waits ``stagger``
    of a period (0..1)."""
    pad = b"x" * max(0, args.size - 8)
    sent = 0
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    next_at = time.perf_counter() + period * stagger
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if period:
            if now < next_at:
                await asyncio.sleep(min(next_at - now, end - now))
                continue
            next_at += period
        payload = (sent.to_bytes(8, "big") + pad)[: args.size]
        t = time.perf_counter()
        msg_id = await node.broadcast(payload, safe=args.safe)
        counter.submitted[msg_id] = t
        if counter.record and len(counter.sends_us) < RECORD_MAX:
            counter.sends_us.append((msg_id.msg_no, _us(t)))
        sent += 1
        if not period and sent % 64 == 0:
            # Let the consumer run: broadcast() returns without yielding
            # while the send queue has room.
            await asyncio.sleep(0)
    return sent


async def _idle(node: Node, seconds: float) -> dict[str, float]:
    """CPU and token rotations of ``seconds`` with nothing to send."""
    node.status()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "cpu_s": _cpu_s() - cpu0,
        "rotations_per_s": node.status().token_rotations_per_s,
    }


def _no_security(roster: Roster, identity: Identity, node_id: int) -> FrameSecurity:
    """The crash-fault model: no signatures, no encryption (reference runs)."""
    return NullSecurity()


async def _main(args: argparse.Namespace) -> None:
    kd = KeyDir(args.keys)
    roster = kd.load_roster()
    identity = Identity.load(kd.node_key(args.name))
    # None: the runtime's default frame security (signed, encrypted).
    node = Node(roster, identity, security=None if args.security == "on" else _no_security)
    everyone = len(roster.nodes)
    async with node:

        async def formed() -> None:
            async for event in node.events():
                if isinstance(event, ViewChanged) and len(event.members) == everyone:
                    return

        await asyncio.wait_for(formed(), FORM_TIMEOUT_S)
        _emit({"ready": node.node_id})
        if (await _stdin_line()).strip() != "go":
            return
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        counter = _Counter(args.record)
        consumer = asyncio.create_task(counter.consume(node))
        idle = await _idle(node, args.idle) if args.idle > 0 else None
        start = time.perf_counter()
        node.status()  # restarts the rotation meter: the next reading covers the window
        cpu0 = _cpu_s()
        counter.window_end = start + args.duration
        ids = sorted(n.id for n in roster.nodes)
        stagger = ids.index(node.node_id) / len(ids)
        sent = await _send(node, counter, args, counter.window_end, stagger)
        delay = counter.window_end - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        cpu = _cpu_s() - cpu0
        if profile is not None:
            profile.disable()
            profile.dump_stats(Path(args.profile) / f"{args.name}.prof")
        rotations = node.status().token_rotations_per_s
        counter.sending_done = True
        if not counter.submitted:
            counter.all_own_delivered.set()
        drained = True
        try:
            await asyncio.wait_for(counter.all_own_delivered.wait(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            drained = False
        status = node.status()
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        _emit(
            {
                "result": {
                    "node": node.node_id,
                    "sent": sent,
                    "delivered_in_window": counter.in_window,
                    "delivered_total": counter.total,
                    "cpu_s": cpu,
                    "latencies_us": counter.latencies_us,
                    "undelivered_own": len(counter.submitted),
                    "drained": drained,
                    "rotations_per_s": rotations,
                    "rss_peak_kib": rss_kib,
                    "idle": idle,
                    "sends_us": counter.sends_us,
                    "deliveries_us": counter.deliveries_us,
                    "drops": dict(status.drops),
                }
            }
        )
        # Stay a member until the parent has every result.
        while (await _stdin_line()).strip() not in ("exit", ""):
            pass
        consumer.cancel()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    p = argparse.ArgumentParser(prog="python -m ringward.cli.bench_worker")
    p.add_argument("--keys", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--rate", type=float, default=0.0, help="messages/s from this node; 0: flood")
    p.add_argument("--safe", action="store_true")
    p.add_argument("--idle", type=float, default=0.0, help="seconds of idle ring first")
    p.add_argument("--record", action="store_true", help="stamp sends and deliveries")
    p.add_argument("--profile", metavar="DIR", help="cProfile the window into DIR/NAME.prof")
    p.add_argument("--security", choices=("on", "off"), default="on")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(prefer_uvloop=not args.no_uvloop)) as r:
        r.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
