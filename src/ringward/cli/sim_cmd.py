"""``ringward sim``: run one seeded, deterministic simulation and check it.

The whole world (network, faults, workload) is drawn from ``--seed``: the same
command prints the same log, byte for byte, on any machine. After ``--duration``
seconds of faults every fault heals and a quiet period follows; then every
guarantee of docs/guarantees.md is checked. Exit 0 when they hold; exit 1
with the violated guarantee, the first offending events and the command that
reproduces the failure (also when an engine raised or a simulation bound was
exceeded, or an engine call took more than --cpu-budget-ms of CPU time:
virtual time cannot see CPU); exit 2 for bad arguments. See docs/simulator.md.

Fault spec (comma-separated): loss=P, dup=P, reorder=P, delay=MIN..MAX (ms),
partition, crash, pause, slow, or none.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ringward.byzantine import BEHAVIOURS, TARGETED, parse_spec
from ringward.errors import ConfigError
from ringward.sim.attacks import ATTACKS, run_attack
from ringward.sim.byzantine import run_byzantine
from ringward.sim.faults import FaultSpec
from ringward.sim.runner import CPU_BUDGET_MS_DEFAULT, Scenario, run_scenario
from ringward.sim.world import CPU_ABORT_FACTOR, SimulationError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sim",
        help="run a deterministic simulation and check the guarantees",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nodes", type=int, default=5, help="ring size (default 5)")
    p.add_argument("--seed", type=int, default=1, help="the seed of the world (default 1)")
    p.add_argument(
        "--duration", type=float, default=30.0, help="virtual seconds of faults (default 30)"
    )
    p.add_argument(
        "--rate", type=float, default=200.0, help="messages per virtual second (default 200)"
    )
    p.add_argument("--faults", default="none", metavar="SPEC", help="fault spec (default none)")
    p.add_argument("--log", metavar="PATH", help="write the JSON Lines event log here")
    p.add_argument(
        "--quiet",
        type=float,
        default=None,
        help="longest quiet period in virtual seconds (default 10 x token timeout + 5)",
    )
    p.add_argument(
        "--no-early-stop",
        action="store_true",
        help="run the whole quiet period even after the ring has settled",
    )
    p.add_argument(
        "--security",
        action="store_true",
        help="sign and encrypt for real (Ed25519, AES-256-GCM, per-view group keys)",
    )
    p.add_argument(
        "--cpu-budget-ms",
        type=float,
        default=CPU_BUDGET_MS_DEFAULT,
        metavar="MS",
        help="CPU time one engine call may take; more fails the run, and a call "
        f"still running at {CPU_ABORT_FACTOR}x is interrupted (default "
        f"{CPU_BUDGET_MS_DEFAULT:g}; 0: not measured)",
    )
    p.add_argument(
        "--attack",
        choices=sorted(ATTACKS),
        help="mount one attack on a secured ring (implies --security); exit 0 only if "
        "the attack's expectation and every guarantee held (see docs/simulator.md)",
    )
    p.add_argument(
        "--byzantine",
        metavar="ID:BEHAVIOUR[,...]",
        help="make members Byzantine (implies --security); behaviours: "
        + ", ".join(b if b not in TARGETED else f"{b}:TARGET" for b in BEHAVIOURS)
        + "; exit 0 only if each expectation (docs/fault-detector.md) and every "
        "guarantee among the correct members held",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    scenario = Scenario(
        nodes=args.nodes,
        seed=args.seed,
        duration=args.duration,
        rate=args.rate,
        faults=FaultSpec.parse(args.faults),
        quiet=args.quiet,
        early_stop=not args.no_early_stop,
        security=args.security,
        cpu_budget_ms=args.cpu_budget_ms,
    )
    if args.attack:
        return _run_attack(args.attack, scenario, args.log)
    if args.byzantine:
        return _run_byzantine(args.byzantine, scenario, args.log)
    try:
        result = run_scenario(scenario)
    except SimulationError as exc:
        # An engine that raised, or a bound exceeded: a finding like any
        # broken guarantee, so it gets the reproduction command too.
        print(f"simulation failed: {exc.message} [{exc.reason}]")
        print(f"reproduce: {scenario.command()}")
        return 1
    if args.log:
        result.write_log(args.log)
    print(f"seed {scenario.seed}, faults {scenario.faults}: {result.stats.summary()}")
    if result.ok:
        print("ok: every guarantee holds")
        return 0
    print(result.failure_text())
    return 1


def _run_attack(name: str, scenario: Scenario, log: str | None) -> int:
    try:
        outcome = run_attack(name, scenario)
    except SimulationError as exc:
        print(f"simulation failed: {exc.message} [{exc.reason}]")
        print(f"reproduce: {scenario.command()} --attack {name}")
        return 1
    if log:
        outcome.result.write_log(log)
    verdict = "held" if outcome.held else "BROKEN"
    print(f"attack {name}: expected {outcome.expectation}: {verdict} ({outcome.detail})")
    if not outcome.result.ok:
        print(outcome.result.failure_text())
    if not outcome.held:
        print(f"reproduce: {outcome.result.scenario.command()} --attack {name}")
    return 0 if outcome.held else 1


def _run_byzantine(spec: str, scenario: Scenario, log: str | None) -> int:
    try:
        parsed = parse_spec(spec, scenario.nodes)
        outcome = run_byzantine(dataclasses.replace(scenario, security=True), parsed)
    except ConfigError as exc:
        print(f"ringward sim: {exc.message}")
        return 2
    except SimulationError as exc:
        print(f"simulation failed: {exc.message} [{exc.reason}]")
        print(f"reproduce: {scenario.command()} --byzantine {spec}")
        return 1
    if log:
        outcome.result.write_log(log)
    print(f"byzantine {spec}: {'held' if outcome.held else 'BROKEN'} ({outcome.detail})")
    if not outcome.result.ok:
        print(outcome.result.failure_text())
    if not outcome.held:
        print(f"reproduce: {outcome.result.scenario.command()} --byzantine {spec}")
    return 0 if outcome.held else 1
