"""``ringward demo``: a live cluster of real processes on loopback.

Provisions a throw-away key directory, starts N ``ringward node`` processes
on 127.0.0.1 (one UDP socket each), streams messages from every node, kills
one node with SIGKILL a third of the way in and restarts it at half-time,
then stops, merges every node's event log and runs the guarantee checker
on it. Exit 0 only when the checker finds no violation and every node that
stayed up delivered the same sequence in each view.

The nodes run with the runtime's default frame security (Ed25519-signed
tokens, AES-256-GCM payloads under a per-ring group key). The Byzantine and
overload faults come with the fault detector and are listed, not simulated.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Final

from ringward.cli.bench_run import SECURITY_ON
from ringward.cli.demo_cluster import NODES_MAX, NODES_MIN, ClusterEvent, LocalCluster
from ringward.cli.demo_timeline import PENDING, FaultKind, Step, default_timeline, inject
from ringward.cli.demo_verify import Verdict, verify
from ringward.cli.demo_view import LiveView, PlainView, View
from ringward.errors import ConfigError

__all__ = ["register", "run"]

# Generous bounds for a loaded 2-CPU machine starting N Python processes.
FORM_TIMEOUT_S: Final = 60.0
SETTLE_TIMEOUT_S: Final = 60.0
# Settled means: every node agrees on the last delivery for this long.
SETTLE_QUIET_S: Final = 1.0
# The main loop's period: sends, timeline and display advance at this pace.
TICK_S: Final = 0.05
# Lines written to one node in one tick at most (a restarted node must not
# get a burst of everything it missed).
WRITES_PER_TICK_MAX: Final = 20


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a live N-node cluster on loopback, inject a crash, check the guarantees",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--nodes",
        type=int,
        default=5,
        help=f"cluster size, {NODES_MIN}..{NODES_MAX} (default 5)",
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds of streaming (default 20)")
    p.add_argument(
        "--rate", type=float, default=10.0, help="messages per second per node (default 10)"
    )
    p.add_argument("--no-faults", action="store_true", help="no crash and restart")
    p.add_argument(
        "--keep-logs",
        metavar="DIR",
        help="copy every node's event log and the merged log here",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The verb: returns 0 when every check passed, 1 otherwise, 130 when
    interrupted."""
    if not NODES_MIN <= args.nodes <= NODES_MAX:
        raise ConfigError("bad_nodes", f"--nodes must be {NODES_MIN}..{NODES_MAX}")
    if not 0 < args.duration <= 3600:
        raise ConfigError("bad_duration", "--duration must be in (0, 3600] seconds")
    if not 0 < args.rate <= 1000:
        raise ConfigError("bad_rate", "--rate must be in (0, 1000] messages/s per node")
    view: View = LiveView(args.nodes) if sys.stdout.isatty() else PlainView()
    with _sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="ringward-demo-") as tmp:
        cluster = LocalCluster(Path(tmp), args.nodes)
        try:
            return _Demo(cluster, args, view).run()
        finally:
            cluster.cleanup()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a test's timeout, a service manager) cleans up like Ctrl-C:
    the children live in their own sessions and must not be orphaned."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Demo:
    """One run: form the ring, stream with faults, settle, check."""

    def __init__(self, cluster: LocalCluster, args: argparse.Namespace, view: View) -> None:
        self.cluster = cluster
        self.args = args
        self.view = view
        self.names = [n.name for n in cluster.nodes]
        self.timeline = default_timeline(self.names, not args.no_faults)
        self.t0 = time.monotonic()
        self.stream_start: float | None = None
        self.seen = 0  # cluster events already handed to the view
        self.views_seen: set[str] = set()
        self.awaiting_rejoin: set[str] = set()

    def run(self) -> int:
        self.view.intro(self._intro())
        interrupted = False
        settled = False
        try:
            with self.view.live(self._snapshot):
                self.cluster.start_all()
                self.t0 = time.monotonic()
                self.view.phase("starting processes, waiting for the ring to form")
                if not self._wait(self._formed, FORM_TIMEOUT_S):
                    self.view.phase(f"the ring did not form within {FORM_TIMEOUT_S:.0f} s")
                    return 1
                self.view.phase(f"ring formed with {len(self.names)} nodes; streaming")
                self._stream()
                self.view.phase("streaming done; waiting for deliveries to settle")
                settled = self._wait(self._settled, SETTLE_TIMEOUT_S, quiet=SETTLE_QUIET_S)
                if not settled:
                    self.view.phase(f"not settled after {SETTLE_TIMEOUT_S:.0f} s; checking anyway")
        except KeyboardInterrupt:
            interrupted = True
        self.cluster.stop_all()
        if interrupted:
            self.view.phase("interrupted: children stopped, safety checks only")
        keep = self._keep_dir()
        verdict = verify(
            self.cluster.nodes,
            self.t0,
            settled=not interrupted,
            keep=keep / "merged.jsonl" if keep else None,
        )
        self.view.summary(self.names, verdict)
        if interrupted:
            return 130
        passed = verdict.ok and settled
        self.view.final("all checks passed" if passed else _failure_line(verdict, settled))
        return 0 if passed else 1

    # ---------------------------------------------------------- phases

    def _intro(self) -> list[str]:
        first = self.cluster.roster.nodes[0].address
        lines = [
            f"ringward demo: {len(self.names)} nodes on loopback from {first}, one process each, "
            f"{self.args.rate:g} msg/s per node for {self.args.duration:g} s",
            f"security: {SECURITY_ON}, the runtime's default",
        ]
        for step in self.timeline:
            at = step.at * self.args.duration
            lines.append(f"timeline: t={at:4.1f}s {step.kind.value} {step.node}")
        pending = "; ".join(f"{k.value} ({why})" for k, why in PENDING.items())
        lines.append(f"not yet available (they need the fault detector): {pending}")
        return lines

    def _stream(self) -> None:
        start = time.monotonic()
        self.stream_start = start
        steps: list[Step] = sorted(self.timeline, key=lambda s: s.at)
        period = 1.0 / self.args.rate
        next_at = dict.fromkeys(self.names, start)
        counters = dict.fromkeys(self.names, 0)
        end = start + self.args.duration
        while (now := time.monotonic()) < end:
            while steps and now >= start + steps[0].at * self.args.duration:
                step = steps.pop(0)
                inject(self.cluster, step)
                if step.kind is FaultKind.RESTART:
                    self.awaiting_rejoin.add(step.node)
            for node in self.cluster.nodes:
                if not node.ready:
                    next_at[node.name] = now
                    continue
                for _ in range(WRITES_PER_TICK_MAX):
                    if now < next_at[node.name]:
                        break
                    counters[node.name] += 1
                    node.write(f"{node.name} msg {counters[node.name]}")
                    next_at[node.name] += period
            self._tick()
            time.sleep(TICK_S)

    def _wait(self, done: Any, timeout: float, quiet: float = 0.0) -> bool:
        """Tick until ``done()`` has held for ``quiet`` seconds; False on
        timeout."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        while (now := time.monotonic()) < deadline:
            self._tick()
            if done():
                since = now if since is None else since
                if now - since >= quiet:
                    return True
            else:
                since = None
            time.sleep(TICK_S)
        return False

    def _formed(self) -> bool:
        everyone = tuple(self.names)
        return all(n.ready and n.members == everyone for n in self.cluster.nodes)

    def _settled(self) -> bool:
        """Every node up, in one full view, its own last line delivered, and
        all agreeing on the last delivery."""
        if not self._formed():
            return False
        last = set()
        for node in self.cluster.nodes:
            with node.lock:
                if node.last_written is not None and node.own_delivered != node.last_written:
                    return False
                last.add((node.view, node.last_delivery))
        return len(last) == 1

    def _tick(self) -> None:
        for event in self.cluster.events_since(self.seen):
            self.seen += 1
            self._event(event)
        self.view.refresh()

    def _event(self, event: ClusterEvent) -> None:
        t = event.t - (self.stream_start or self.t0)
        if event.kind != "view":
            self.view.event(t, event.text)
            return
        view_id = str(event.data.get("view"))
        members = tuple(event.data.get("members", ()))
        if view_id in self.views_seen:
            return
        self.views_seen.add(view_id)
        self.view.event(t, f"{event.text} (first seen at {event.node})")
        if event.data.get("kind") == "regular":
            for name in sorted(self.awaiting_rejoin):
                # Back among the others, not merely alone in a ring of its own
                # (a restarted node first forms a singleton ring).
                if name in members and len(members) > 1:
                    self.awaiting_rejoin.discard(name)
                    self.view.event(t, f"{name} rejoined: view {view_id} members {len(members)}")

    def _snapshot(self) -> tuple[float, list[dict[str, Any]]]:
        elapsed = time.monotonic() - (self.stream_start or time.monotonic())
        rows = []
        for node in self.cluster.nodes:
            with node.lock:
                rows.append(
                    {
                        "name": node.name,
                        "up": node.up,
                        "view": node.view,
                        "members": len(node.members),
                        "sent": node.written,
                        "delivered": node.deliveries,
                        "last_seq": node.last_seq,
                        "incarnation": len(node.incarnations),
                    }
                )
        return elapsed, rows

    def _keep_dir(self) -> Path | None:
        if not self.args.keep_logs:
            return None
        import shutil

        keep = Path(self.args.keep_logs)
        keep.mkdir(parents=True, exist_ok=True)
        for node in self.cluster.nodes:
            for inc in node.incarnations:
                for path in (inc.log, inc.log.with_suffix(".err")):
                    if path.exists():
                        shutil.copy(path, keep / path.name)
        return keep


def _failure_line(verdict: Verdict, settled: bool) -> str:
    parts = []
    if not settled:
        parts.append("the cluster did not settle")
    if not verdict.report.ok:
        parts.append(f"{len(verdict.report.violations)} checker violations")
    if verdict.sequence_problems:
        parts.append(f"{len(verdict.sequence_problems)} views with differing sequences")
    return "CHECKS FAILED: " + ", ".join(parts)
