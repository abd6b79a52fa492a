"""A userspace UDP relay: delay, jitter, duplication, reordering, rate.

The kernel of the machine the suite was written on has no netem qdisc, so
these faults are made here instead, in the bridge namespace. The roster of a
relayed scenario lists, for node i, the relay's address i; node i itself
binds its own address (``ringward node --bind``). The relay forwards what
reaches its address i to node i's address. Nodes ignore source addresses
(they authenticate every datagram), so nothing else changes.

Run as a script: ``python relay.py CONFIG.json``. The configuration names
the address pairs and the fault (all optional, 0 = off): ``delay_ms``,
``jitter_ms`` (uniform +-), ``dup_permille``, ``reorder_permille`` with
``reorder_ms`` (that share of datagrams is held back this much longer, so
later ones overtake it), ``rate_kbit`` with ``queue_ms`` (a shaper per
destination: datagrams queue behind each other at that rate, those that
would wait longer than ``queue_ms`` are dropped), and ``seed``.

SIGUSR1 heals (forward at once, untouched), SIGUSR2 brings the fault back;
SIGTERM stops. On exit it prints one JSON line of counters on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any, Final

# Larger than any datagram ringward sends (its frames stay under 64 KiB).
DATAGRAM_BYTES_MAX: Final = 65536
# Kernel buffers asked for: a burst of a whole token visit must not be
# dropped by the relay's own socket before the fault decides.
SOCKET_BUFFER_BYTES: Final = 4 << 20
# How often the relay checks that the harness that started it still runs.
PARENT_CHECK_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Fault:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    dup_permille: int = 0
    reorder_permille: int = 0
    reorder_ms: float = 0.0
    rate_kbit: float = 0.0
    queue_ms: float = 0.0


class Relay:
    def __init__(self, pairs: list[tuple[str, str, int]], fault: Fault, seed: int) -> None:
        self.fault = fault
        self.active = True
        self.rng = random.Random(seed)
        self.counts = {"in": 0, "out": 0, "dup": 0, "reordered": 0, "rate_dropped": 0}
        self.socks: list[tuple[socket.socket, tuple[str, int]]] = []
        for listen, dest, port in pairs:
            fam = socket.AF_INET6 if ":" in listen else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                s.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_BYTES)
            s.bind((listen, port))
            s.setblocking(False)
            self.socks.append((s, (dest, port)))
        # Per destination: when the shaper's queue is empty again (loop time).
        self.free_at: dict[tuple[str, int], float] = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for s, dest in self.socks:
            loop.add_reader(s.fileno(), self._readable, loop, s, dest)

    def _readable(
        self, loop: asyncio.AbstractEventLoop, s: socket.socket, dest: tuple[str, int]
    ) -> None:
        while True:
            try:
                data = s.recv(DATAGRAM_BYTES_MAX)
            except BlockingIOError:
                return
            except OSError:
                return
            self.counts["in"] += 1
            self._route(loop, s, dest, data)

    def _route(
        self, loop: asyncio.AbstractEventLoop, s: socket.socket, dest: tuple[str, int], data: bytes
    ) -> None:
        f = self.fault
        if not self.active:
            self._send(s, dest, data)
            return
        delay = f.delay_ms + (self.rng.uniform(-f.jitter_ms, f.jitter_ms) if f.jitter_ms else 0.0)
        if f.reorder_permille and self.rng.randrange(1000) < f.reorder_permille:
            delay += f.reorder_ms
            self.counts["reordered"] += 1
        delay_s = max(0.0, delay) / 1000
        if f.rate_kbit:
            now = loop.time()
            start = max(now, self.free_at.get(dest, now))
            if start - now > f.queue_ms / 1000:
                self.counts["rate_dropped"] += 1
                return
            self.free_at[dest] = start + len(data) * 8 / (f.rate_kbit * 1000)
            delay_s += start - now
        copies = 1
        if f.dup_permille and self.rng.randrange(1000) < f.dup_permille:
            copies = 2
            self.counts["dup"] += 1
        for i in range(copies):
            extra = self.rng.uniform(0, 0.005) if i else 0.0
            if delay_s + extra <= 0:
                self._send(s, dest, data)
            else:
                loop.call_later(delay_s + extra, self._send, s, dest, data)

    def _send(self, s: socket.socket, dest: tuple[str, int], data: bytes) -> None:
        try:
            s.sendto(data, dest)
            self.counts["out"] += 1
        except OSError:
            pass  # a full buffer or a link down: a loss, as on a wire


async def _main(config: dict[str, Any]) -> None:
    pairs = [(str(a), str(b), int(p)) for a, b, p in config["pairs"]]
    fault = Fault(**config.get("fault", {}))
    relay = Relay(pairs, fault, int(config.get("seed", 0)))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(relay, "active", False))
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(relay, "active", True))
    relay.start(loop)
    print(json.dumps({"ready": True}), flush=True)
    parent = os.getppid()
    # A harness killed -9 cannot stop us: notice that it is gone.
    while not stop.is_set() and os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_S)
    print(json.dumps(relay.counts), flush=True)


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        config = json.load(f)
    asyncio.run(_main(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
