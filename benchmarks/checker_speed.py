"""How fast the guarantee checker (and the log parser) run on a large valid log.

Generates a synthetic run: N nodes in one ring going through a few
configuration changes (transitional + regular each time), M messages in total
(every 5th safe), every message delivered by every node -- about N * M
delivery events (default 9 x 111,112 ~ 1M). Prints events/s for
``check()`` and for ``parse_lines()`` on the canonical JSON lines.

    .venv/bin/python benchmarks/checker_speed.py [--nodes 9] [--messages 111112]
"""

from __future__ import annotations

import argparse
import hashlib
import time

from ringward.eventlog import DeliverEvent, Event, SendEvent, ViewEvent, parse_lines, to_json
from ringward.sim.checker import check


def synthetic_log(nodes: int, messages: int, configs: int = 10) -> list[Event]:
    """A valid run: `configs` regular configurations of all nodes in turn."""
    members = tuple(range(1, nodes + 1))
    events: list[Event] = []
    t = 0.0
    per_config = -(-messages // configs)
    sent = 0
    for c in range(configs):
        if c:
            for node in members:
                events.append(
                    ViewEvent(
                        t=t,
                        node=node,
                        view=f"t{c}",
                        kind="transitional",
                        members=members,
                        quorate=True,
                    )
                )
        for node in members:
            events.append(
                ViewEvent(
                    t=t, node=node, view=f"r{c}", kind="regular", members=members, quorate=True
                )
            )
        batch = []
        for seq in range(1, min(per_config, messages - sent) + 1):
            sent += 1
            mid = f"m{sent}"
            sender = members[sent % nodes]
            digest = hashlib.blake2b(mid.encode(), digest_size=16).hexdigest()
            safe = sent % 5 == 0
            events.append(SendEvent(t=t, node=sender, id=mid, digest=digest, safe=safe))
            batch.append((seq, mid, sender, digest, safe))
        t += 1.0
        for node in members:
            events.extend(
                DeliverEvent(
                    t=t, node=node, view=f"r{c}", seq=seq, id=mid, sender=s, digest=d, safe=safe
                )
                for seq, mid, s, d, safe in batch
            )
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=9)
    parser.add_argument("--messages", type=int, default=111_112)
    parser.add_argument("--skip-parse", action="store_true", help="time check() only")
    args = parser.parse_args()

    start = time.perf_counter()
    events = synthetic_log(args.nodes, args.messages)
    deliveries = sum(isinstance(e, DeliverEvent) for e in events)
    took = time.perf_counter() - start
    print(f"generated {len(events):,} events ({deliveries:,} deliveries) in {took:.1f} s")

    start = time.perf_counter()
    report = check(events)
    took = time.perf_counter() - start
    assert report.ok, report.format()
    print(f"check():       {took:6.2f} s  {len(events) / took:12,.0f} events/s")

    if not args.skip_parse:
        lines = [to_json(e) for e in events]
        start = time.perf_counter()
        parsed = parse_lines(lines)
        took = time.perf_counter() - start
        assert len(parsed) == len(events)
        print(f"parse_lines(): {took:6.2f} s  {len(events) / took:12,.0f} events/s")


if __name__ == "__main__":
    main()
