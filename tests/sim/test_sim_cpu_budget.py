"""The simulator sees CPU: an engine call over the CPU budget fails the run.

Virtual time cannot see how long an engine computes, so an engine that
loops for seconds (recovery over a range of 2^64 seqs a Byzantine member
named) used to pass. The world measures every call into an engine
(World._call) and the checker reports each overrun under G3 as
``cpu_budget``; a call that never returns is interrupted by the watchdog.
"""

from __future__ import annotations

import gc
import shlex
import signal
import time

import pytest

from ringward.cli import build_parser, main
from ringward.engine import Engine
from ringward.sim import runner
from ringward.sim.faults import FaultSpec
from ringward.sim.keys import SimKeys
from ringward.sim.runner import Result, Scenario, run_scenario
from ringward.sim.world import (
    CPU_ABORT_FACTOR,
    CpuBudgetError,
    EngineFactory,
    EngineLike,
    World,
)
from sim_fake import SequencerEngine

# The datagram after which the slow engine burns: node 2, from t >= SLOW_AT.
SLOW_NODE = 2
SLOW_AT = 1.0


def burn(seconds: float) -> int:
    """Spend ``seconds`` of CPU time in a counted loop."""
    t0 = time.thread_time()
    count = 0
    while time.thread_time() - t0 < seconds:
        count += 1
    return count


def spin_forever() -> int:
    """A loop over a range nobody can finish (2^64 seqs)."""
    count = 0
    for _ in range(1 << 64):
        count += 1
    return count


class SlowSequencer(SequencerEngine):
    """The toy engine; node 2's first receive at t >= 1 s burns ``burn_s``."""

    burn_s = 0.12
    hang = False

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        super().receive(now, datagram, source)
        if self.node_id == SLOW_NODE and now >= SLOW_AT and not getattr(self, "_burnt", False):
            self._burnt = True
            if self.hang:
                spin_forever()
            burn(self.burn_s)


class HangingSequencer(SlowSequencer):
    hang = True


def toy_factory(cls: type[SequencerEngine]) -> EngineFactory:
    def make(node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0) -> EngineLike:
        return cls(node, roster, incarnation=inc, now=now)

    return make


def toy_run(cls: type[SequencerEngine], budget_ms: float) -> Result:
    scenario = Scenario(nodes=3, seed=5, duration=2.0, rate=50.0, cpu_budget_ms=budget_ms)
    return run_scenario(scenario, engine_factory=toy_factory(cls))


def cpu_violations(result: Result) -> list[str]:
    return [v.message for v in result.report.violations if v.name == "cpu_budget"]


def test_a_call_over_the_budget_fails_the_run_with_node_call_and_time() -> None:
    result = toy_run(SlowSequencer, budget_ms=50.0)
    assert not result.ok
    assert result.report.guarantees == {3}
    (message,) = cpu_violations(result)
    assert message.startswith(f"node {SLOW_NODE} (incarnation 0) spent ")
    assert "in one receive at t=" in message and "(budget 50 ms)" in message
    (overrun,) = result.cpu_overruns
    assert overrun.node == SLOW_NODE
    assert overrun.call == "receive" and overrun.t >= SLOW_AT and overrun.cpu_s >= 0.12
    assert not overrun.interrupted
    assert message.endswith("(budget 50 ms); the run stopped there")
    text = result.failure_text()
    assert "G3 self delivery and liveness / cpu_budget: node 2" in text
    # The run stopped there, judged as cut short: only the CPU budget failed.
    assert result.stats.virtual_s == overrun.t < result.scenario.duration


def test_the_same_run_passes_with_the_budget_off_or_above_the_cost() -> None:
    assert toy_run(SlowSequencer, budget_ms=0.0).ok
    assert toy_run(SlowSequencer, budget_ms=1000.0).ok


def test_a_fault_free_toy_run_passes_the_default_budget() -> None:
    assert toy_run(SequencerEngine, budget_ms=runner.CPU_BUDGET_MS_DEFAULT).ok


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timers here")
def test_a_call_that_never_returns_is_interrupted_and_fails_the_run() -> None:
    wall = time.perf_counter()
    result = toy_run(HangingSequencer, budget_ms=10.0)
    assert time.perf_counter() - wall < 30.0
    assert not result.ok
    (message,) = cpu_violations(result)
    assert message.startswith(f"node {SLOW_NODE} (incarnation 0) spent ")
    assert "in one receive at t=" in message
    assert message.endswith(f", interrupted at {CPU_ABORT_FACTOR}x); the run stopped there")
    (overrun,) = result.cpu_overruns
    assert overrun.cpu_s >= CPU_ABORT_FACTOR * 0.010
    # Cut short: judged without liveness, so the CPU budget is the finding.
    assert {v.name for v in result.report.violations} == {"cpu_budget"}
    assert result.stats.virtual_s < result.scenario.duration
    # The watchdog is gone: SIGPROF is back to its default, no timer left.
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no interval timers here")
def test_the_world_raises_cpu_budget_error_when_driven_directly() -> None:
    import random

    from ringward.sim.network import LinkModel, Network
    from ringward.sim.world import WorldLimits

    roster = [1, 2, 3]
    world = World(
        roster,
        toy_factory(HangingSequencer),
        Network(roster, random.Random(0), LinkModel(delay_min_s=0.001, delay_max_s=0.001)),
        limits=WorldLimits(cpu_budget_ms=10.0),
    )
    world.start()

    def submit() -> None:
        world.submit(1, b"x")

    world.schedule(SLOW_AT, submit)
    with pytest.raises(CpuBudgetError) as info:
        world.run_until(3.0)
    assert info.value.reason == "sim.cpu_budget"
    assert info.value.overrun.interrupted and info.value.overrun.call == "receive"
    assert world.cpu_overruns == [info.value.overrun]


class BurningEngine(Engine):
    """The real engine; node 2 burns CPU in its first receive after 1 s."""

    def receive(self, now: float, datagram: bytes, source: object = None) -> None:
        super().receive(now, datagram, source)
        if self.node_id == SLOW_NODE and now >= SLOW_AT and not getattr(self, "_burnt", False):
            self._burnt = True
            burn(0.12)


def real_run(engine_class: type[Engine], budget_ms: float = runner.CPU_BUDGET_MS_DEFAULT) -> Result:
    scenario = Scenario(
        nodes=4, seed=1, duration=3.0, rate=50.0, security=True, cpu_budget_ms=budget_ms
    )
    keys = SimKeys(scenario.seed, tuple(range(1, scenario.nodes + 1)))

    def make(node: int, roster: tuple[int, ...], inc: int, now: float, rs: int) -> EngineLike:
        return engine_class(
            node, roster, incarnation=inc, ring_seq=rs, now=now, security=keys.security(node)
        )

    return run_scenario(scenario, engine_factory=make)


@pytest.mark.heavy
def test_a_seeded_real_run_passes_the_default_budget() -> None:
    result = real_run(Engine)
    assert result.ok, result.failure_text()


@pytest.mark.heavy
def test_a_real_engine_whose_receive_burns_fails_the_run() -> None:
    result = real_run(BurningEngine, budget_ms=50.0)
    assert not result.ok
    messages = cpu_violations(result)
    assert len(messages) == 1 and messages[0].startswith(f"node {SLOW_NODE} ")
    assert "in one receive at t=" in messages[0]


def test_the_budget_is_on_the_command_line() -> None:
    scenario = Scenario(nodes=3, seed=4, duration=2.0, faults=FaultSpec(), cpu_budget_ms=20.0)
    command = scenario.command()
    assert "--cpu-budget-ms 20" in command
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.cpu_budget_ms == 20.0
    assert "--cpu-budget-ms" not in Scenario().command()
    assert build_parser().parse_args(["sim"]).cpu_budget_ms == runner.CPU_BUDGET_MS_DEFAULT


def test_cli_reports_the_overrun_and_a_bad_budget_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = toy_factory(SlowSequencer)
    monkeypatch.setattr(runner, "real_engine_factory", lambda config=None, keys=None: factory)
    argv = ["sim", "--nodes", "3", "--seed", "5", "--duration", "2", "--rate", "50"]
    assert main([*argv, "--cpu-budget-ms", "50"]) == 1
    out = capsys.readouterr().out
    assert "cpu_budget: node 2 (incarnation 0) spent " in out
    assert "reproduce: ringward sim --nodes 3 --seed 5 --duration 2 --rate 50" in out
    assert main([*argv, "--cpu-budget-ms", "0"]) == 0
    capsys.readouterr()
    assert main([*argv, "--cpu-budget-ms", "-1"]) == 2
    assert "cpu_budget_ms=-1.0 is out of range" in capsys.readouterr().err


def test_the_garbage_collector_is_not_counted() -> None:
    """A full collection of a big heap (~30 ms in the test suite) lands in
    whichever call allocates next: not the engine's work."""
    from ringward.sim.cpubudget import engine_clock as _engine_clock

    toy_run(SequencerEngine, budget_ms=50.0)  # a world installed the gc callback
    junk: list[list[int]] = [[] for _ in range(300_000)]
    t0, c0 = time.thread_time(), _engine_clock()
    for _ in range(5):
        gc.collect()
    spent, counted = time.thread_time() - t0, _engine_clock() - c0
    del junk
    assert spent > 0.01
    assert counted < spent / 4
