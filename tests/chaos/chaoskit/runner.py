"""Run one scenario from an empty machine to a verdict.

1. namespaces (:mod:`chaoskit.netns`), keys by ``ringward keys init
   --address`` for the namespace addresses (the relay's, when relayed), the
   relay if any, an nftables table in every node namespace;
2. every node started, the workload on (each node broadcasts
   ``rate_per_node_hz`` lines a second through its stdin), wait for one
   ring with every node;
3. each fault of the seeded timeline: inject, hold, heal, wait for the ring
   to be whole again (bounded);
4. the tail: the workload goes on a few seconds in the healed ring, stops,
   the ring drains; every node is frozen, then stopped, so no view change
   is logged on the way out;
5. :func:`chaoskit.judge.judge`. A failing run's directory (logs, merged
   log, ``timeline.txt`` with the seed) is kept.

Everything made is removed on every way out (:mod:`chaoskit.cleanup`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Final

from chaoskit import cleanup, rosterops
from chaoskit.judge import REMOVING, Outcome, Result, judge, reconfiguration
from chaoskit.netns import NODE_PORT, Topology
from chaoskit.nft import NodeFilter
from chaoskit.procs import STOP_GRACE_S, CpuThrottle, NodeProc, ViewSeen, cli_has
from chaoskit.schedule import FaultKind, Scenario, Step, timeline
from ringward.crypto.keydir import KeyDir

__all__ = ["KEEP_ENV", "ChaosRun", "run_scenario"]

# Where failing runs are kept (and every run, with RINGWARD_CHAOS_KEEP_ALL=1).
KEEP_ENV: Final = "RINGWARD_CHAOS_KEEP"
KEEP_ALL_ENV: Final = "RINGWARD_CHAOS_KEEP_ALL"
DEFAULT_KEEP: Final = Path(tempfile.gettempdir()) / "ringward-chaos"
# Bounds on every wait (seconds): generous for a loaded 2-CPU machine; a
# ring that needs longer than this to re-form counts as not re-forming.
FORM_TIMEOUT_S: Final = 60.0
HEAL_TIMEOUT_S: Final = 45.0
BYZANTINE_TIMEOUT_S: Final = 45.0
# After the workload stops: time for the last messages to be delivered.
DRAIN_S: Final = 3.0
# The checker's liveness bound after the last heal (docs/chaos.md).
LIVENESS_BOUND_S: Final = 15.0
# A killed, paused or cut-off node must be out of the view within the token
# and consensus timeouts plus this: process scheduling on a shared 2-CPU
# machine (measured: 0-0.9 s over the two timeouts, the most under 5 % loss
# on 7 nodes; docs/chaos.md).
RECONFIG_SLACK_S: Final = 2.0
# How often waits look at the views seen.
POLL_S: Final = 0.05
# A ring counts as settled once whole and without a view change for this
# long: more than the token + consensus timeouts (2.2 s by default) in
# which a late effect of a fault would show.
STABLE_S: Final = 3.0
RELAY_SCRIPT: Final = Path(__file__).with_name("relay.py")


class ChaosRun:
    """The live state of one run (nodes, filters, views seen)."""

    def __init__(self, scenario: Scenario, seed: int, workdir: Path, topo: Topology) -> None:
        self.scenario = scenario
        self.seed = seed
        self.workdir = workdir
        self.topo = topo
        self.lock = threading.Lock()
        self.views: list[ViewSeen] = []
        self.notes: list[str] = []
        self.t0 = time.monotonic()
        relayed = scenario.relay is not None
        first = topo.nodes[: scenario.nodes]  # the others are for ROSTER_ADD
        addresses = [n.address(ipv6=scenario.ipv6, relayed=relayed) for n in first]
        keydir = workdir / "keys"
        self.keydir = keydir
        cmd = [sys.executable, "-m", "ringward", "keys", "init", str(keydir), "--cluster", "chaos"]
        for a in addresses:
            cmd += ["--address", a]
        if cli_has(("keys", "init"), "--no-passphrase"):
            cmd.append("--no-passphrase")
        env = {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"ringward keys init failed: {res.stderr.strip()}")
        # The layout of `keys init` is changing: an admin directory with
        # the node keys inside (older), or admin/ plus one bundle per node.
        admin = keydir / "admin" if (keydir / "admin").is_dir() else keydir
        roster = KeyDir(admin).load_roster()
        self.params = roster.params
        # Shared with every NodeProc: ROSTER_ADD adds to it.
        self.ids = {n.name: n.id for n in roster.nodes}
        self.nodes: list[NodeProc] = []
        for entry, net in zip(roster.nodes, first, strict=True):
            self.add_proc(entry.name, entry.id, net.index)
        # Node indices (1-based) in the roster now; ROSTER_* change it.
        self.current = set(range(1, scenario.nodes + 1))
        self.filters = [NodeFilter(n.ns) for n in topo.nodes]
        self.relay: subprocess.Popen[str] | None = None
        self._writing = threading.Event()
        self._writer: threading.Thread | None = None

    def add_proc(self, name: str, node_id: int, index: int) -> NodeProc:
        """The slot of node ``name`` in namespace ``index`` (not started)."""
        net = self.topo.node(index)
        host = f"[{net.ipv6}]" if self.scenario.ipv6 else net.ipv4
        bundle = self.keydir / name
        proc = NodeProc(
            name=name,
            node_id=node_id,
            ns=net.ns,
            bind=f"{host}:{NODE_PORT}",
            keydir=bundle if bundle.is_dir() else self.keydir,
            rundir=self.workdir,
            ids=self.ids,
            views=self.views,
            lock=self.lock,
        )
        self.nodes.append(proc)
        return proc

    def seen(self) -> list[ViewSeen]:
        """The view lines seen so far (a copy: reader threads append)."""
        with self.lock:
            return list(self.views)

    def everyone(self) -> frozenset[int]:
        """The ids of the nodes the roster lists now."""
        return frozenset(self.nodes[i - 1].node_id for i in self.current)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        line = f"{self.now():7.2f}s {text}"
        self.notes.append(line)
        if os.environ.get("RINGWARD_CHAOS_VERBOSE"):
            print(line, flush=True)

    # --- set-up -----------------------------------------------------------

    def start_relay(self) -> None:
        fault = self.scenario.relay
        assert fault is not None
        v6 = self.scenario.ipv6
        pairs = [
            [n.relay_ipv6 if v6 else n.relay_ipv4, n.ipv6 if v6 else n.ipv4, NODE_PORT]
            for n in self.topo.nodes
        ]
        config = self.workdir / "relay.json"
        fields = {k: getattr(fault, k) for k in fault.__dataclass_fields__}
        config.write_text(json.dumps({"pairs": pairs, "fault": fields, "seed": self.seed}))
        self.relay = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.topo.bridge_ns,
                sys.executable,
                str(RELAY_SCRIPT),
                str(config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=(self.workdir / "relay.err").open("wb"),
            text=True,
            start_new_session=True,
        )
        relay = self.relay
        cleanup.register("stop the relay", lambda: _kill(relay))
        assert relay.stdout is not None
        ready = relay.stdout.readline()
        if "ready" not in ready:
            raise RuntimeError(f"relay did not start: {(self.workdir / 'relay.err').read_text()}")
        self.note(f"relay: {fault.describe()}")

    def heal_relay(self) -> None:
        if self.relay is not None and self.relay.poll() is None:
            self.relay.send_signal(signal.SIGUSR1)
            self.note("relay healed")

    def stop_relay(self) -> None:
        relay = self.relay
        if relay is None:
            return
        relay.send_signal(signal.SIGTERM)
        try:
            out, _ = relay.communicate(timeout=STOP_GRACE_S)
            self.note(f"relay counters: {out.strip().splitlines()[-1] if out.strip() else '?'}")
        except subprocess.TimeoutExpired:
            _kill(relay)

    def start_nodes(self) -> None:
        for i, node in enumerate(self.nodes, 1):
            behaviour = self.scenario.byzantine.get(i)
            if behaviour is not None:
                node.extra_args = (
                    "--misbehave",
                    behaviour,
                    "--misbehave-after",
                    str(self.scenario.misbehave_after_s),
                )
            node.start()
        self.note("nodes started")

    # --- workload ----------------------------------------------------------

    def start_workload(self) -> None:
        self._writing.set()
        self._writer = threading.Thread(target=self._write_loop, name="chaos-writer", daemon=True)
        self._writer.start()

    def stop_workload(self) -> None:
        self._writing.clear()
        if self._writer is not None:
            self._writer.join(10)

    def _write_loop(self) -> None:
        period = 1.0 / self.scenario.rate_per_node_hz
        k = 0
        next_t = time.monotonic()
        while self._writing.is_set():
            k += 1
            for node in self.nodes:
                node.write(f"{node.name}.{len(node.incarnations)}.{k}")
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))

    # --- observation --------------------------------------------------------

    def ids_of(self, indices: tuple[int, ...]) -> frozenset[int]:
        return frozenset(self.nodes[i - 1].node_id for i in indices)

    def wait_whole(
        self, expected: frozenset[int], since: float | None, timeout_s: float
    ) -> float | None:
        """Monotonic time at which every node of ``expected`` was seen in one
        regular view whose members are exactly ``expected`` (only views seen
        after ``since`` count); None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                latest: dict[int, ViewSeen] = {}
                for v in self.views:
                    if v.kind == "regular" and (since is None or v.t >= since):
                        latest[v.node] = v
            got = [latest.get(n) for n in expected]
            if all(v is not None and v.members == expected for v in got):
                view_ids = {v.view for v in got if v is not None}
                if len(view_ids) == 1:
                    return max(v.t for v in got if v is not None)
            time.sleep(POLL_S)
        return None

    def wait_stable(
        self, expected: frozenset[int], since: float | None, timeout_s: float
    ) -> float | None:
        """:meth:`wait_whole`, and then no view line from any node for
        STABLE_S: a fault's effect may come after its heal (a starved node
        is evicted when the others catch up), and "settled" must not be
        declared between the heal and that view change."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            whole = self.wait_whole(expected, since, deadline - time.monotonic())
            if whole is None:
                return None
            lines = len(self.seen())
            time.sleep(STABLE_S)
            if len(self.seen()) == lines:
                return whole
        return None

    # --- faults --------------------------------------------------------------

    def addresses(self, indices: tuple[int, ...]) -> list[str]:
        nets = [self.topo.node(i) for i in indices]
        return [a for n in nets for a in (n.ipv4, n.ipv6)]

    def inject(self, step: Step) -> Callable[[], None]:
        """Start ``step``'s fault; return what heals it."""
        k = step.kind
        nodes = [self.nodes[i - 1] for i in step.targets if i <= len(self.nodes)]
        if k in (FaultKind.KILL, FaultKind.KILL_FRESH):
            for n in nodes:
                n.kill()

            def restart() -> None:
                for n in nodes:
                    if k is FaultKind.KILL_FRESH:
                        n.ring_seq_file.unlink(missing_ok=True)
                        shutil.rmtree(n.state_dir, ignore_errors=True)
                    n.start()

            return restart
        if k is FaultKind.PAUSE:
            for n in nodes:
                n.pause(True)
            return _each([functools.partial(n.pause, False) for n in nodes])
        if k is FaultKind.PARTITION:
            rest = tuple(i for i in range(1, len(self.nodes) + 1) if i not in step.targets)
            for i in step.targets:
                self.filters[i - 1].set(blocked=self.addresses(rest))
            for i in rest:
                self.filters[i - 1].set(blocked=self.addresses(step.targets))
            return self._unblock_all
        if k is FaultKind.ASYMMETRIC:
            deaf, talker = step.targets
            self.filters[deaf - 1].set(blocked=self.addresses((talker,)))
            return self._unblock_all
        if k is FaultKind.LINK_DOWN:
            for i in step.targets:
                self.topo.link(i, up=False)
            return _each([functools.partial(self.topo.link, i, up=True) for i in step.targets])
        if k is FaultKind.LOSS:
            for f in self.filters:
                f.set(loss_permille=step.loss_permille)

            def restore() -> None:
                for f in self.filters:
                    f.set(loss_permille=self.scenario.loss_permille)

            return restore
        if k is FaultKind.ROSTER_REVOKE:
            # `keys revoke` deletes the revoked node's key (its bundle is no
            # bundle any more): the others get the new roster; the revoked
            # node runs on with the old one, whose datagrams they now drop.
            for n in nodes:
                rosterops.revoke_node(self.keydir, n.name)
            self.current -= set(step.targets)
            rosterops.distribute(self.keydir, [self.nodes[i - 1].keydir for i in self.current])
            return _each([])
        if k is FaultKind.ROSTER_ADD:
            (index,) = step.targets
            name = f"node{index}"
            net = self.topo.node(index)
            relayed = self.scenario.relay is not None
            address = net.address(ipv6=self.scenario.ipv6, relayed=relayed)
            rosterops.add_node(self.keydir, name, address)
            rosterops.distribute(self.keydir, [self.nodes[i - 1].keydir for i in self.current])
            roster = KeyDir(self.keydir / "admin").load_roster()
            self.ids[name] = roster.node_by_name(name).id
            self.add_proc(name, self.ids[name], index).start()
            self.current.add(index)
            return _each([])
        if k is FaultKind.CPU_STARVE:
            throttles = []
            for n in nodes:
                assert n.proc is not None
                throttles.append(CpuThrottle(n.proc.pid, step.cpu_percent, self.topo.tag + n.name))
            return _each([t.release for t in throttles])
        raise ValueError(f"unknown fault {k}")

    def _unblock_all(self) -> None:
        for f in self.filters:
            if f.blocked:
                f.set(blocked=())

    def run_step(self, step: Step) -> Outcome:
        time.sleep(step.gap_s)
        injected = time.monotonic()
        self.note(f"inject {step.describe()}")
        heal = self.inject(step)
        if step.kind is FaultKind.ROSTER_ADD:
            # Measured from the new node's start, once every node has the
            # new roster file (a revocation: from `keys revoke`).
            injected = time.monotonic()
            self.note("roster distributed, new node started")
        time.sleep(step.hold_s)
        healed = time.monotonic()
        dropped = sum(f.dropped() for f in self.filters)
        if dropped:
            self.note(f"nftables dropped {dropped} datagrams")
        heal()
        self.note(f"healed {step.kind.value}")
        targets = self.ids_of(step.targets)
        out_s = reconfiguration(self.seen(), targets, injected, healed) if targets else None
        since = healed if step.kind in REMOVING and out_s is not None else None
        whole = self.wait_stable(self.everyone(), since, HEAL_TIMEOUT_S)
        self.note("whole again" if whole is not None else "NOT whole again")
        return Outcome(
            step=step,
            injected_s=injected - self.t0,
            healed_s=healed - self.t0,
            out_s=out_s,
            in_s=None if whole is None else max(0.0, whole - healed),
        )

    def stop_all(self) -> None:
        """Freeze every node, then stop it: nobody logs the others leaving."""
        running = [n for n in self.nodes if n.up]
        for n in running:
            n.signal(signal.SIGSTOP)
        for n in running:
            n.signal(signal.SIGTERM)
        for n in running:
            n.signal(signal.SIGCONT)
        deadline = time.monotonic() + STOP_GRACE_S
        for n in running:
            if not n.wait_exit(max(0.1, deadline - time.monotonic())):
                n.cleanup()
        for n in self.nodes:
            n.cleanup()


def _each(fns: list[Callable[[], None]]) -> Callable[[], None]:
    """One heal that calls every one of ``fns``."""

    def heal() -> None:
        for fn in fns:
            fn()

    return heal


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_GRACE_S)


def _drive(run: ChaosRun, steps: list[Step]) -> tuple[float | None, list[Outcome], list[str]]:
    """Steps 2-4 of the module docstring; returns (settled at, outcomes, extra)."""
    sc = run.scenario
    everyone = run.everyone()
    honest_ids = frozenset(
        n.node_id
        for i, n in enumerate(run.nodes, 1)
        if sc.byzantine.get(i, "overload") == "overload"
    )
    extra: list[str] = []
    if sc.relay is not None:
        run.start_relay()
    for f in run.filters:
        f.set(loss_permille=sc.loss_permille, blocked=())
    run.start_nodes()
    run.start_workload()
    formed = run.wait_whole(everyone, None, FORM_TIMEOUT_S)
    if formed is None:
        run.note("the ring never formed")
        return None, [], ["never-formed"]
    run.note(f"ring formed after {formed - run.t0:.1f}s")
    extra.append(f"formed={formed - run.t0:.1f}s")
    outcomes = [run.run_step(step) for step in steps]
    settled: float | None
    if sc.byzantine:
        # Byzantine nodes: the ring must end without them; an overloaded
        # node must be back (evicted, rejoined). Times are measured from
        # when each began to misbehave (its start + --misbehave-after).
        bad = {i: run.nodes[i - 1] for i in sc.byzantine}
        begun = min(n.incarnations[0].started for n in bad.values()) + sc.misbehave_after_s
        time.sleep(max(0.0, begun + 1.0 - time.monotonic()))
        since = begun + 1.0 if "overload" in sc.byzantine.values() else None
        settled = run.wait_stable(honest_ids, since, BYZANTINE_TIMEOUT_S)
        out = reconfiguration(
            run.seen(), frozenset(n.node_id for n in bad.values()), begun, time.monotonic()
        )
        extra.append("byz_out=" + ("-" if out is None else f"{out:.1f}s"))
        if settled is not None and since is not None:
            extra.append(f"back={settled - begun:.1f}s")
    else:
        settled = run.wait_stable(run.everyone(), None, HEAL_TIMEOUT_S)
    if sc.relay is not None:
        # The relay's fault holds for relay_hold_s of workload, then heals.
        time.sleep(sc.relay_hold_s)
        run.heal_relay()
        settled = run.wait_stable(honest_ids, None, HEAL_TIMEOUT_S)
    run.note("settled" if settled is not None else "NOT settled")
    time.sleep(sc.tail_s)
    run.stop_workload()
    time.sleep(DRAIN_S)
    run.stop_all()
    run.stop_relay()
    return settled, outcomes, extra


def run_scenario(scenario: Scenario, seed: int, *, keep: Path | None = None) -> Result:
    """Run ``scenario`` with ``seed``; a failing run's directory is kept
    under ``keep`` (default $RINGWARD_CHAOS_KEEP or /tmp/ringward-chaos)."""
    steps = timeline(scenario, seed)
    keep_root = keep or Path(os.environ.get(KEEP_ENV) or DEFAULT_KEEP)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{scenario.name}-{seed}-"))
    result: Result | None = None
    try:
        with Topology(scenario.nodes + scenario.spare_nodes) as topo:
            run = ChaosRun(scenario, seed, workdir, topo)
            harness_error = None
            try:
                settled, outcomes, extra = _drive(run, steps)
            except Exception:  # judged as a failure, with the logs kept
                harness_error = traceback.format_exc()
                run.note(f"HARNESS ERROR\n{harness_error}")
                settled, outcomes, extra = None, [], ["harness-error"]
            finally:
                run.stop_workload()
                for n in run.nodes:
                    n.cleanup()
                if run.relay is not None:
                    _kill(run.relay)
            result = judge(
                scenario,
                seed,
                run.nodes,
                run.t0,
                settled_at=settled,
                outcomes=outcomes,
                merged_path=workdir / "merged.jsonl",
                liveness_bound_s=LIVENESS_BOUND_S,
                gone=frozenset(
                    n.node_id for i, n in enumerate(run.nodes, 1) if i not in run.current
                ),
                out_bound_s=(run.params.token_timeout_ms + run.params.consensus_timeout_ms) / 1000
                + RECONFIG_SLACK_S,
            )
            result.extra = extra
            if harness_error is not None:
                result.problems.append(f"the harness failed: {harness_error}")
            _write_timeline(workdir, scenario, seed, steps, run.notes, result)
    finally:
        if result is None or not result.ok or os.environ.get(KEEP_ALL_ENV):
            keep_root.mkdir(parents=True, exist_ok=True)
            dest = keep_root / workdir.name
            shutil.move(str(workdir), dest)
            if result is not None:
                result.logdir = dest
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _write_timeline(
    workdir: Path,
    scenario: Scenario,
    seed: int,
    steps: list[Step],
    notes: list[str],
    result: Result,
) -> None:
    result.timeline = [
        f"scenario {scenario.name} seed {seed}",
        f"reproduce: python tests/chaos/run_chaos.py {scenario.name} --seed {seed}",
        "timeline:",
        *(f"  {s.describe()}" for s in steps),
        "as run (seconds since the start):",
        *(f"  {n}" for n in notes),
    ]
    text = [*result.timeline, result.line(), result.details()]
    (workdir / "timeline.txt").write_text("\n".join(text) + "\n")
