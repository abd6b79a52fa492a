"""``ringward demo``: a live cluster of real processes on loopback.

Provisions a throw-away key directory, starts N ``ringward node`` processes
on 127.0.0.1 (one UDP socket each) and streams messages from every node.
On a timeline (times counted from the processes' start), the last node
turns Byzantine (it equivocates: two signed tokens for one position) and,
later, the middle node is overloaded for 8 s (its process blocks on every
datagram). The display shows, live, the ring, each node's deliveries, its
Totem state and the suspicion scores the others hold against it, the
evictions with their reasons, and the overloaded node's rejection and
rejoin. Then the demo stops every node, merges their event logs and checks
them: the guarantee checker (the Byzantine node not judged, no correct node
evicted except for overload), the same delivery sequence at the correct
nodes of each view, the Byzantine node evicted for equivocation, and the
overloaded node evicted for overload and back in the final view. Exit 0
only when all of that holds; 1 otherwise; 130 on Ctrl-C, which stops the
nodes cleanly.

The nodes run with the runtime's default frame security (Ed25519-signed
tokens, AES-256-GCM payloads under a per-ring group key). ``--no-faults``
runs the same cluster with no misbehaving node.
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
from ringward.cli.demo_cluster import (
    NODES_MAX,
    NODES_MIN,
    STATUS_EVERY_S,
    ClusterEvent,
    LocalCluster,
)
from ringward.cli.demo_timeline import FaultKind, Step, announce, default_timeline, node_args
from ringward.cli.demo_verify import Verdict, verify
from ringward.cli.demo_view import LiveView, PlainView, View
from ringward.errors import ConfigError

__all__ = ["register", "run"]

# Generous bounds for a loaded 2-CPU machine starting N Python processes.
FORM_TIMEOUT_S: Final = 60.0
# Also covers an overloaded node still out when streaming ends: its
# overload, a second cool-down (6 s) and a membership round.
SETTLE_TIMEOUT_S: Final = 60.0
# A node whose status lines run this far apart is shown as lagging: a
# blocked process (the overload blocks up to 1.3 s per batch of datagrams);
# a healthy node's lines come STATUS_EVERY_S apart.
LAG_SHOWN_S: Final = 1.6 * STATUS_EVERY_S
# Settled means: every node agrees on the last delivery for this long.
SETTLE_QUIET_S: Final = 1.0
# The main loop's period: sends, timeline and display advance at this pace.
TICK_S: Final = 0.05
# Lines written to one node in one tick at most (a node back from a
# cool-down must not get a burst of everything it missed).
WRITES_PER_TICK_MAX: Final = 20
# A ring of N tolerates f = (N - 1) // 3 Byzantine members: one needs N >= 4.
# (With 3 nodes, f = 0, the run often passes, but the guarantees it checks
# are not promised, and one member's accusation alone would convict.)
FAULTS_NODES_MIN: Final = 4


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a live N-node cluster on loopback, evict a Byzantine and an overloaded "
        "node, check the guarantees",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--nodes",
        type=int,
        default=5,
        help=f"cluster size, {NODES_MIN}..{NODES_MAX} (default 5)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds of streaming once the ring formed (default 30); the faults start at "
        "15%% and 30%% of it (at least 3 s and 7 s after the processes start)",
    )
    p.add_argument(
        "--rate", type=float, default=10.0, help="messages per second per node (default 10)"
    )
    p.add_argument(
        "--no-faults", action="store_true", help="no Byzantine node and no overloaded node"
    )
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
    if args.nodes < FAULTS_NODES_MIN and not args.no_faults:
        raise ConfigError(
            "bad_nodes",
            f"the faults need --nodes {FAULTS_NODES_MIN} or more (or pass --no-faults)",
        )
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
    """One run: form the ring, stream while the faults play out, settle,
    check."""

    def __init__(self, cluster: LocalCluster, args: argparse.Namespace, view: View) -> None:
        self.cluster = cluster
        self.args = args
        self.view = view
        self.names = [n.name for n in cluster.nodes]
        self.timeline = default_timeline(self.names, args.duration, not args.no_faults)
        self.pending: list[Step] = sorted(self.timeline, key=lambda s: s.at)
        self.roles = {s.node: s.kind for s in self.timeline}
        byzantine = {s.node for s in self.timeline if s.kind.byzantine}
        self.correct = [n for n in self.names if n not in byzantine]
        self.t0 = time.monotonic()
        self.seen = 0  # cluster events already handed to the view
        self.views_seen: set[str] = set()
        self.out: set[str] = set()  # evicted and not back, as displayed

    def run(self) -> int:
        self.view.intro(self._intro())
        interrupted = False
        settled = False
        try:
            with self.view.live(self._snapshot):
                self.t0 = time.monotonic()
                self.cluster.start_all({n: tuple(node_args(self.timeline, n)) for n in self.names})
                self.view.phase("starting processes, waiting for the ring to form")
                if not self._wait(self._formed, FORM_TIMEOUT_S):
                    self.view.phase(f"the ring did not form within {FORM_TIMEOUT_S:.0f} s")
                    return 1
                self.view.phase(f"ring formed with {len(self.names)} nodes; streaming")
                self._stream()
                self.view.phase("streaming done; waiting for deliveries and faults to settle")
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
            timeline=self.timeline,
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
            f"{self.args.rate:g} msg/s per node for {self.args.duration:g} s once the ring formed",
            f"security: {SECURITY_ON}, the runtime's default",
        ]
        for step in self.timeline:
            lines.append(f"timeline: t={step.at:4.1f}s {step.node} {step.kind.what}")
            lines.append(f"          expected: {step.kind.expect}")
        if not self.timeline:
            lines.append("timeline: no faults (--no-faults)")
        lines.append(
            "times: seconds since the processes started; suspected: the highest suspicion "
            "score another node holds against it (accused at 100)"
        )
        return lines

    def _stream(self) -> None:
        start = time.monotonic()
        period = 1.0 / self.args.rate
        next_at = dict.fromkeys(self.names, start)
        counters = dict.fromkeys(self.names, 0)
        end = start + self.args.duration
        while (now := time.monotonic()) < end:
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

    def _together(self, members: set[str]) -> bool:
        """Every correct node is ready in one regular view of ``members``."""
        views = set()
        for name in self.correct:
            node = self.cluster.by_name(name)
            if not node.ready:
                return False
            with node.lock:
                if set(node.members) != members:
                    return False
                views.add(node.view)
        return len(views) == 1

    def _formed(self) -> bool:
        """All nodes in one ring; or, when the Byzantine node was already
        evicted (a slow start), all correct ones."""
        return self._together(set(self.names)) or (
            len(self.correct) < len(self.names)
            and not any(s.kind.byzantine for s in self.pending)
            and self._together(set(self.correct))
        )

    def _settled(self) -> bool:
        """Every fault has started and the overloaded node has been out;
        every correct node is back in one view without the Byzantine node,
        its own last line delivered, all agreeing on the last delivery."""
        if self.pending:
            return False
        for step in self.timeline:
            if step.kind.rejoins and not self.cluster.by_name(step.node).rejections:
                return False
        if not self._together(set(self.correct)):
            return False
        last = set()
        for name in self.correct:
            node = self.cluster.by_name(name)
            with node.lock:
                if node.last_written is not None and node.own_delivered != node.last_written:
                    return False
                last.add((node.view, node.last_delivery))
        return len(last) == 1

    def _tick(self) -> None:
        now = time.monotonic()
        while self.pending and now >= self.t0 + self.pending[0].at:
            announce(self.cluster, self.pending.pop(0))
        for event in self.cluster.events_since(self.seen):
            self.seen += 1
            self._event(event)
        self.view.refresh()

    def _event(self, event: ClusterEvent) -> None:
        t = event.t - self.t0
        if event.kind == "evict":
            # Every correct member reports each eviction: show the first.
            target = str(event.data.get("target"))
            if target not in self.out:
                self.out.add(target)
                self.view.event(t, f"{event.text}, first at {event.node}")
            return
        if event.kind == "rejoin":
            self.out.discard(event.node)
        if event.kind != "view":
            self.view.event(t, event.text)
            return
        # Regular views only: the transitional view before each (extended
        # virtual synchrony) is in the logs and the checker's, not on screen.
        view_id = str(event.data.get("view"))
        if event.data.get("kind") != "regular" or view_id in self.views_seen:
            return
        self.views_seen.add(view_id)
        self.view.event(t, f"{event.text} (first at {event.node})")

    def _snapshot(self) -> tuple[float, list[dict[str, Any]]]:
        now = time.monotonic()
        rows = []
        for node in self.cluster.nodes:
            # Before taking this node's lock: _suspicion takes the others'.
            suspicion = self._suspicion(node.name)
            up = node.up
            lag = node.status_lag(now) if up else None
            with node.lock:
                status = (
                    "down"
                    if not up
                    else "rejected"
                    if node.rejected is not None
                    else "joining"
                    if node.view is None
                    else "up"
                )
                rows.append(
                    {
                        "name": node.name,
                        "role": _role(self.roles.get(node.name)),
                        "status": status,
                        "state": node.state,
                        "lag_s": lag if lag is not None and lag > LAG_SHOWN_S else None,
                        "view": node.view,
                        "members": len(node.members),
                        "sent": node.written,
                        "delivered": node.deliveries,
                        "suspicion": suspicion,
                    }
                )
        return now - self.t0, rows

    def _suspicion(self, target: str) -> tuple[float, str, dict[str, float]] | None:
        """The highest total score another running node holds against
        ``target``: (total, that node, its scores by signal)."""
        best: tuple[float, str, dict[str, float]] | None = None
        for node in self.cluster.nodes:
            if node.name == target or not node.up:
                continue
            with node.lock:
                signals = dict(node.scores.get(target, {}))
            total = sum(signals.values())
            if total >= 1 and (best is None or total > best[0]):
                best = (total, node.name, signals)
        return best

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


def _role(kind: FaultKind | None) -> str:
    if kind is None:
        return "correct"
    return "byzantine" if kind.byzantine else "overloaded"


def _failure_line(verdict: Verdict, settled: bool) -> str:
    parts = []
    if not settled:
        parts.append("the cluster did not settle")
    if not verdict.report.ok:
        parts.append(f"{len(verdict.report.violations)} checker violations")
    if verdict.sequence_problems:
        parts.append(f"{len(verdict.sequence_problems)} views with differing sequences")
    failed = [f.expected for f in verdict.faults if not f.ok]
    if failed:
        parts.append("not as expected: " + "; ".join(failed))
    return "CHECKS FAILED: " + ", ".join(parts)
