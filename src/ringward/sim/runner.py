"""Scenarios: one seed, one world, one verdict.

Theory of operation
-------------------
:func:`run_scenario` builds a :class:`~ringward.sim.world.World` of
``nodes`` engines (ids 1..N), then runs two phases on the virtual clock:

1. *Faults* (``duration`` s): the workload submits messages (a Poisson
   process of ``rate`` per second over the live nodes), the link faults of
   the :class:`~ringward.sim.faults.FaultSpec` are in force and the planned
   episodes (partitions, crashes, pauses, slow nodes) come and go. At the
   end every fault is healed: partitions joined, crashed nodes restarted,
   paused nodes resumed, slow nodes normal, loss/dup/reorder off.
2. *Quiet* (at most ``quiet`` s): no faults, no new messages. The membership
   protocol must bring every node into one regular configuration. With
   ``early_stop`` the phase ends once that happened and nothing was
   delivered or installed for ``settle_margin`` s (quiescence), which makes
   hundreds of seeds affordable; the verdict is the same as waiting longer
   unless the engine acts after being quiescent that long.

Then :func:`ringward.sim.checker.check` judges the whole log with every node
expected up. The world also measures the CPU time of every engine call
(virtual time cannot see CPU): the first call over ``cpu_budget_ms`` (one
still running at ``CPU_ABORT_FACTOR`` budgets is interrupted) ends the run
there, and the log is judged as cut short (no liveness) with that failure.
Randomness: one ``random.Random`` per concern, seeded with
``f"{seed}:{concern}"`` (``net``, ``workload``, ``faults:<kind>``); string
seeds are hashed by SHA-512 inside ``random``, independent of
PYTHONHASHSEED, so a seed reproduces a run on any machine.
"""

from __future__ import annotations

import dataclasses
import math
import random
import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Final

from ringward.engine import Engine, EngineConfig
from ringward.engine.config import MERGE_BACKOFF_MAX_S
from ringward.errors import ConfigError
from ringward.eventlog import Event, to_json
from ringward.sim.decodememo import DecodeMemo
from ringward.sim.faults import Episode, EpisodeKind, FaultSpec, plan_faults
from ringward.sim.keys import SimKeys
from ringward.sim.network import LinkModel, Network
from ringward.sim.report import GUARANTEES, Report
from ringward.sim.world import (
    CpuBudgetError,
    CpuOverrun,
    EngineFactory,
    EngineLike,
    Interceptor,
    World,
    WorldLimits,
)

__all__ = [
    "Result",
    "Scenario",
    "Stats",
    "real_engine_factory",
    "run_scenario",
]

NODES_MAX: Final = 256  # the wire's roster limit
RUN_S_MAX: Final = 86_400.0  # a virtual day: beyond it, a unit mistake
CPU_BUDGET_MS_MAX: Final = 3_600_000.0  # an hour of CPU per engine call
CPU_BUDGET_MS_DEFAULT: Final = WorldLimits().cpu_budget_ms
RATE_MAX: Final = 100_000.0  # messages per virtual second
# Workload shape: mostly small messages up to a few KB, 1% large ones that
# need fragmentation, 10% safe.
SMALL_BYTES_MAX: Final = 4096
LARGE_BYTES_MIN: Final = 20_000
LARGE_BYTES_MAX: Final = 100_000
LARGE_FRACTION: Final = 0.01
SAFE_FRACTION: Final = 0.10
# How often the quiet phase looks for convergence (virtual seconds).
SETTLE_POLL_S: Final = 0.1
# Offending events printed per failure.
FAILURE_EVENTS_MAX: Final = 8


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything that determines one run. Times in virtual seconds.

    ``quiet`` None: 10 x the token timeout + 5 s. ``config`` None: the
    engine's defaults. ``settle_margin`` None: the token timeout + 1 s.
    ``cpu_budget_ms``: CPU time one engine call may take (0: not
    measured); it replaces ``cpu_budget_ms`` of the limits passed to
    :func:`run_scenario`.
    """

    nodes: int = 5
    seed: int = 1
    duration: float = 30.0
    rate: float = 200.0
    faults: FaultSpec = field(default_factory=FaultSpec)
    quiet: float | None = None
    early_stop: bool = True
    settle_margin: float | None = None
    config: EngineConfig | None = None
    # Real signatures and encryption (RingSecurity with seed-derived node
    # keys) instead of the crash-model NullSecurity.
    security: bool = False
    cpu_budget_ms: float = CPU_BUDGET_MS_DEFAULT

    def __post_init__(self) -> None:
        checks = [
            ("nodes", 1 <= self.nodes <= NODES_MAX),
            ("duration", 0.0 <= self.duration <= RUN_S_MAX),
            ("rate", 0.0 <= self.rate <= RATE_MAX),
            ("quiet", self.quiet is None or 0.0 <= self.quiet <= RUN_S_MAX),
            ("settle_margin", self.settle_margin is None or 0.0 <= self.settle_margin <= RUN_S_MAX),
            ("cpu_budget_ms", 0.0 <= self.cpu_budget_ms <= CPU_BUDGET_MS_MAX),
        ]
        for name, ok in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError("sim.bad_scenario", f"{name}={value} is out of range")

    @property
    def token_timeout_s(self) -> float:
        """The engine's token timeout, which sets the scale of the quiet phase."""
        return (self.config or EngineConfig()).token_timeout_ms / 1000.0

    @property
    def quiet_s(self) -> float:
        """Length of the quiet phase (upper bound when ``early_stop``)."""
        return self.quiet if self.quiet is not None else 10 * self.token_timeout_s + 5.0

    @property
    def liveness_bound_s(self) -> float:
        """How long after the faults end (or its send, if later) a correct
        node's message may take to be delivered by its sender, and by every
        correct node if it was sent after the faults (checker, 3
        ``late_delivery``): a merge after a long partition waits out the
        merge back-off (up to 10 s), then one membership round."""
        return MERGE_BACKOFF_MAX_S + 3 * self.token_timeout_s

    @property
    def settle_margin_s(self) -> float:
        """Quiescence needed to end the quiet phase early."""
        if self.settle_margin is not None:
            return self.settle_margin
        # Longer than a token loss timeout: an engine that still has work
        # (a gap to fill, a membership change to start) shows it by then.
        return self.token_timeout_s + 1.0

    def command(self) -> str:
        """The ``ringward sim`` command line that reproduces this scenario."""
        words = [
            "ringward", "sim",
            "--nodes", str(self.nodes),
            "--seed", str(self.seed),
            "--duration", _num(self.duration),
            "--rate", _num(self.rate),
            "--faults", str(self.faults),
        ]  # fmt: skip
        if self.quiet is not None:
            words += ["--quiet", _num(self.quiet)]
        if not self.early_stop:
            words.append("--no-early-stop")
        if self.security:
            words.append("--security")
        if self.cpu_budget_ms != CPU_BUDGET_MS_DEFAULT:
            words += ["--cpu-budget-ms", _num(self.cpu_budget_ms)]
        text = shlex.join(words)
        if self.config is not None and self.config != EngineConfig():
            text += f"  # with {self.config!r}"
        if self.settle_margin is not None:
            text += f"  # with settle_margin={self.settle_margin!r}"
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True, slots=True)
class Stats:
    """What one run did (counts, and the wall time it took)."""

    nodes: int
    sent: int
    refused: Mapping[str, int]
    delivered: int
    views: int
    crashes: int
    restarts: int
    pauses: int
    network_drops: Mapping[str, int]
    engine_drops: Mapping[str, int]
    engine_notes: Mapping[str, int]
    world_drops: Mapping[str, int]
    timer_nudges: int
    processed: int
    virtual_s: float
    wall_s: float

    def summary(self) -> str:
        """One paragraph for humans."""
        rate = self.processed / self.wall_s if self.wall_s > 0 else 0.0
        parts = [
            f"{self.nodes} nodes, {self.virtual_s:.1f} virtual s in {self.wall_s:.2f} wall s "
            f"({self.processed:,} sim events, {rate:,.0f}/s)",
            f"{self.sent:,} messages sent{_reasons(' refused', self.refused)}, "
            f"{self.delivered:,} deliveries, {self.views:,} views installed",
            f"{self.crashes} crashes, {self.restarts} restarts, {self.pauses} pauses",
            f"network dropped {sum(self.network_drops.values()):,}"
            f"{_reasons('', self.network_drops)}",
            f"simulator dropped {sum(self.world_drops.values()):,}{_reasons('', self.world_drops)}",
        ]
        if self.engine_drops:
            parts.append(
                f"engines dropped {sum(self.engine_drops.values()):,}"
                f"{_reasons('', self.engine_drops)}"
            )
        if self.timer_nudges:
            parts.append(f"{self.timer_nudges} spinning timers nudged")
        return "; ".join(parts) + "."


def _reasons(prefix: str, counts: Mapping[str, int]) -> str:
    if not counts:
        return ""
    inner = ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))
    return f"{prefix} ({inner})"


@dataclass(frozen=True, slots=True)
class Result:
    """One run's log, verdict and counts."""

    scenario: Scenario
    events: tuple[Event, ...]
    report: Report
    stats: Stats
    episodes: tuple[Episode, ...]
    # Engine calls over the CPU budget (each one also in ``report``).
    cpu_overruns: tuple[CpuOverrun, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every guarantee held."""
        return self.report.ok

    def log_lines(self) -> Iterator[str]:
        """The event log, one canonical JSON line (no newline) per event."""
        return (to_json(e) for e in self.events)

    def log_bytes(self) -> bytes:
        """The whole event log as written by :meth:`write_log`."""
        return "".join(line + "\n" for line in self.log_lines()).encode("ascii")

    def write_log(self, path: str | PathLike[str]) -> None:
        """Write the JSON Lines event log to ``path`` (replacing it)."""
        with open(path, "w", encoding="ascii", newline="\n") as handle:
            for line in self.log_lines():
                handle.write(line + "\n")

    def failure_text(self) -> str:
        """What broke, the first offending events, and how to reproduce it."""
        if self.ok:
            return "ok: no violations"
        broken = ", ".join(f"G{g} {GUARANTEES[g]}" for g in sorted(self.report.guarantees))
        out = [f"guarantees violated: {broken}", self.report.format(), "first offending events:"]
        quoted: list[Event] = []
        for violation in self.report.violations:
            quoted += [e for e in violation.events if e not in quoted]
        for event in quoted[:FAILURE_EVENTS_MAX]:
            out.append(f"  line {event.line}: {to_json(event)}")
        out.append(f"reproduce: {self.scenario.command()}")
        return "\n".join(out)


def real_engine_factory(
    config: EngineConfig | None = None, keys: SimKeys | None = None
) -> EngineFactory:
    """A factory building ``ringward.engine.Engine`` with ``config``, and
    with real frame security when ``keys`` are given; its engines share one
    memo of decoded datagrams."""
    memo = DecodeMemo()

    def make(
        node: int, roster: tuple[int, ...], incarnation: int, now: float, ring_seq: int
    ) -> EngineLike:
        return Engine(
            node,
            roster,
            config=config,
            incarnation=incarnation,
            ring_seq=ring_seq,
            now=now,
            security=keys.security(node) if keys is not None else None,
            decoder=memo,
        )

    return make


class _Workload:
    """Poisson arrivals of messages with unique, seed-derived payloads."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.scenario = scenario
        # Not for secrets: a reproducible stream is the point (S311).
        self.rng = random.Random(f"{scenario.seed}:workload")  # noqa: S311
        self.count = 0

    def start(self) -> None:
        if self.scenario.rate > 0.0:
            self._next()

    def _next(self) -> None:
        at = self.world.now + self.rng.expovariate(self.scenario.rate)
        if at < self.scenario.duration:
            self.world.schedule(at, self._submit)

    def _submit(self) -> None:
        rng = self.rng
        large = rng.random() < LARGE_FRACTION
        size = (
            rng.randint(LARGE_BYTES_MIN, LARGE_BYTES_MAX)
            if large
            else rng.randint(1, SMALL_BYTES_MAX)
        )
        safe = rng.random() < SAFE_FRACTION
        pick = rng.random()
        live = [n for n in self.world.roster if self.world.is_live(n)]
        if live:
            self.count += 1
            # The header makes every payload (hence digest) unique in the run.
            head = f"ringward-sim:{self.scenario.seed}:{self.count}:".encode("ascii")
            body = rng.randbytes(max(0, size - len(head)))
            self.world.submit(live[int(pick * len(live))], head + body, safe)
        else:
            self.world.counters.refused["no_live_node"] += 1
        self._next()


_Action = Callable[[World, Episode], None]


def _each(method: Callable[[World, int], None]) -> _Action:
    def act(world: World, episode: Episode) -> None:
        for node in episode.nodes:
            method(world, node)

    return act


def _slow_start(world: World, episode: Episode) -> None:
    for node in episode.nodes:
        world.set_slow(node, episode.slow_s)


def _slow_end(world: World, episode: Episode) -> None:
    for node in episode.nodes:
        world.set_slow(node, 0.0)


# Start and end of each episodic fault kind (faults.py documents the kinds).
_START: Final[dict[EpisodeKind, _Action]] = {
    "partition": lambda w, e: w.network.partition(e.groups),
    "crash": _each(World.crash),
    "pause": _each(World.pause),
    "slow": _slow_start,
}
_END: Final[dict[EpisodeKind, _Action]] = {
    "partition": lambda w, e: w.network.heal(),
    "crash": _each(World.restart),
    "pause": _each(World.resume),
    "slow": _slow_end,
}


def _heal_all(world: World, scenario: Scenario) -> None:
    world.network.heal()
    world.network.model = scenario.faults.without_link_faults().link_model(LinkModel())
    for node in world.roster:
        world.restart(node)
        world.resume(node)
        world.set_slow(node, 0.0)


def _quiet(world: World, scenario: Scenario) -> None:
    end = scenario.duration + scenario.quiet_s
    if not scenario.early_stop:
        world.run_until(end)
        return
    margin = scenario.settle_margin_s
    # Quiescence counts from the healing at the earliest: the engines need
    # that long to show the work the faults left them.
    healed = world.now
    # Bounded: at most quiet_s / SETTLE_POLL_S polls.
    while world.now < end:
        world.run_until(min(world.now + SETTLE_POLL_S, end))
        if world.converged() and world.now - max(world.last_progress_t, healed) >= margin:
            return


def run_scenario(
    scenario: Scenario,
    *,
    engine_factory: EngineFactory | None = None,
    interceptor: Interceptor | None = None,
    limits: WorldLimits | None = None,
    byzantine: Mapping[int, str] | None = None,
    setup: Callable[[World], None] | None = None,
) -> Result:
    """Run ``scenario`` and check its log. ``engine_factory`` None: the real
    engine with ``scenario.config``. Raises SimulationError when a bound is
    exceeded or an engine raises; a broken guarantee, or an engine call over
    the CPU budget (``scenario.cpu_budget_ms``), is in ``Result.report``."""
    from ringward.sim.checker import check

    wall_start = time.perf_counter()
    roster = tuple(range(1, scenario.nodes + 1))
    keys = SimKeys(scenario.seed, roster) if scenario.security else None
    factory = engine_factory or real_engine_factory(scenario.config, keys)
    # Not for secrets: a reproducible stream is the point (S311).
    net_rng = random.Random(f"{scenario.seed}:net")  # noqa: S311
    network = Network(roster, net_rng, scenario.faults.link_model(LinkModel()))
    limits = dataclasses.replace(limits or WorldLimits(), cpu_budget_ms=scenario.cpu_budget_ms)
    world = World(roster, factory, network, limits=limits, interceptor=interceptor)
    episodes = plan_faults(scenario.faults, roster, scenario.duration, scenario.seed)
    cut_short = False
    try:
        world.start()
        for node, behaviour in sorted((byzantine or {}).items()):
            world.mark_byzantine(node, behaviour)  # before its first misdeed
        if setup is not None:
            setup(world)
        for episode in episodes:
            world.schedule(episode.start_s, _START[episode.kind], world, episode)
            world.schedule(episode.end_s, _END[episode.kind], world, episode)
        _Workload(world, scenario).start()
        # Scheduled after every episode end at the same instant: runs last.
        world.schedule(scenario.duration, _heal_all, world, scenario)
        world.run_until(scenario.duration)
        _quiet(world, scenario)
    except CpuBudgetError:
        cut_short = True  # the overrun is in world.cpu_overruns; judged below
    world.retire_all()
    events = tuple(world.events)
    # Byzantine nodes are left out of every guarantee (their log events too).
    report = check(
        events,
        expect_up=set(roster) - set(byzantine or {}),
        converge=not cut_short,
        forbid_correct_evictions=True,
        cpu_overruns=world.cpu_overruns,
        settled_after=scenario.duration,
        liveness_bound_s=scenario.liveness_bound_s,
    )
    return Result(
        scenario,
        events,
        report,
        _stats(world, time.perf_counter() - wall_start),
        episodes,
        tuple(world.cpu_overruns),
    )


def _stats(world: World, wall_s: float) -> Stats:
    c = world.counters
    return Stats(
        nodes=len(world.roster),
        sent=c.sent,
        refused=dict(c.refused),
        delivered=c.delivered,
        views=c.views,
        crashes=c.crashes,
        restarts=c.restarts,
        pauses=c.pauses,
        network_drops=dict(world.network.drops),
        engine_drops=dict(c.engine_drops),
        engine_notes=dict(c.engine_notes),
        world_drops=dict(c.drops),
        timer_nudges=c.timer_nudges,
        processed=c.processed,
        virtual_s=world.now,
        wall_s=wall_s,
    )
