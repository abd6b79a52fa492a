"""Scenarios end to end with the toy engine: determinism, verdicts, the CLI."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ringward.cli import build_parser, main
from ringward.errors import ConfigError
from ringward.eventlog import CrashEvent, RestartEvent, SendEvent, read_log
from ringward.sim import runner
from ringward.sim.faults import FaultSpec
from ringward.sim.runner import Result, Scenario, run_scenario
from ringward.sim.world import EngineFactory
from sim_fake import DuplicatingEngine, RaisingEngine, SequencerEngine, sequencer_factory

EVERYTHING = FaultSpec.parse(
    "loss=0.05,dup=0.05,reorder=0.1,delay=0.2..2,partition,crash,pause,slow"
)


def run(factory: EngineFactory = sequencer_factory, **kwargs: Any) -> Result:
    kwargs.setdefault("duration", 4.0)
    kwargs.setdefault("nodes", 4)
    return run_scenario(Scenario(**kwargs), engine_factory=factory)


def test_same_seed_same_log_bytes() -> None:
    a = run(seed=11, faults=EVERYTHING)
    b = run(seed=11, faults=EVERYTHING)
    assert len(a.events) > 500
    assert a.log_bytes() == b.log_bytes()
    assert a.episodes == b.episodes
    assert a.stats.sent == b.stats.sent and a.stats.processed == b.stats.processed


def test_different_seed_different_log() -> None:
    assert (
        run(seed=11, faults=EVERYTHING).log_bytes() != run(seed=12, faults=EVERYTHING).log_bytes()
    )
    assert run(seed=11).log_bytes() != run(seed=12).log_bytes()


def test_fault_free_run_passes_the_checker() -> None:
    result = run(seed=3, rate=300)
    assert result.ok, result.failure_text()
    assert result.stats.sent > 800
    assert result.stats.delivered == result.stats.sent * 4
    assert result.failure_text() == "ok: no violations"


def test_dup_and_reorder_pass_with_a_correct_toy() -> None:
    result = run(seed=4, faults=FaultSpec.parse("dup=0.2,reorder=0.3,delay=0.5..3"))
    assert result.ok, result.failure_text()
    assert result.stats.network_drops == {}


def test_quiet_phase_stops_early_once_settled() -> None:
    early = run(seed=5, duration=2.0)
    assert early.stats.virtual_s == pytest.approx(2.0 + 2.0, abs=0.11)  # margin 1 s + 1 s
    full = run(seed=5, duration=2.0, early_stop=False)
    assert full.stats.virtual_s == pytest.approx(2.0 + 15.0)
    short = run(seed=5, duration=2.0, quiet=1.0)
    assert short.stats.virtual_s == pytest.approx(3.0)


def test_every_fault_is_healed_by_the_end() -> None:
    result = run(seed=2, nodes=5, duration=20.0, rate=20, faults=EVERYTHING)
    kinds = {e.kind for e in result.episodes}
    assert {"crash", "pause", "partition", "slow"} <= kinds
    down: set[int] = set()
    for e in result.events:
        if isinstance(e, CrashEvent):
            assert e.t <= 20.0
            down.add(e.node)
        elif isinstance(e, RestartEvent):
            assert e.t <= 20.0
            down.discard(e.node)
    assert not down
    assert result.stats.crashes == result.stats.restarts > 0
    assert max(e.t for e in result.events if isinstance(e, SendEvent)) < 20.0


def test_workload_shape() -> None:
    engines: list[SequencerEngine] = []
    sizes: list[int] = []

    class Recording(SequencerEngine):
        def submit(self, now: float, payload: bytes, safe: bool = False) -> Any:
            sizes.append(len(payload))
            return super().submit(now, payload, safe)

    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> Recording:
        engine = Recording(node, roster, incarnation=inc, now=now)
        engines.append(engine)
        return engine

    result = run(factory, seed=9, duration=20.0, rate=200)
    sends = [e for e in result.events if isinstance(e, SendEvent)]
    assert 3400 < len(sends) < 4600  # Poisson, 200/s for 20 s
    assert len({e.digest for e in sends}) == len(sends)  # unique payloads
    assert 0.07 < sum(e.safe for e in sends) / len(sends) < 0.13
    large = [s for s in sizes if s >= 20_000]
    assert 15 < len(large) < 70 and max(sizes) <= 100_000
    assert {e.node for e in sends} == {1, 2, 3, 4}
    assert run(seed=9, rate=0.0).stats.sent == 0


def test_a_broken_engine_fails_with_a_reproduction_command() -> None:
    def factory(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> DuplicatingEngine:
        return DuplicatingEngine(node, roster, incarnation=inc, now=now)

    result = run(factory, seed=7, nodes=3, faults=FaultSpec(loss=0.01))
    assert not result.ok
    assert 2 in result.report.guarantees
    text = result.failure_text()
    assert "guarantees violated: G2 no duplication, no creation" in text
    assert "duplicate_delivery" in text and '"ev":"deliver"' in text and "line " in text
    assert text.splitlines()[-1] == (
        "reproduce: ringward sim --nodes 3 --seed 7 --duration 4 --rate 200 --faults loss=0.01"
    )


def test_command_reparses_to_the_same_scenario() -> None:
    scenario = Scenario(nodes=7, seed=42, duration=2.5, rate=10.0, faults=EVERYTHING, quiet=3.0)
    args = build_parser().parse_args(shlex.split(scenario.command())[1:])
    again = Scenario(
        nodes=args.nodes,
        seed=args.seed,
        duration=args.duration,
        rate=args.rate,
        faults=FaultSpec.parse(args.faults),
        quiet=args.quiet,
        early_stop=not args.no_early_stop,
    )
    assert again == scenario


@pytest.mark.parametrize(
    "kwargs",
    [{"nodes": 0}, {"nodes": 1000}, {"duration": -1.0}, {"rate": float("inf")}, {"quiet": -2.0}],
)
def test_bad_scenarios_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Scenario(**kwargs)


def test_one_node_ring() -> None:
    result = run(seed=1, nodes=1, faults=FaultSpec.parse("partition,pause,loss=0.5"))
    assert result.ok, result.failure_text()
    assert result.stats.delivered == result.stats.sent > 0


# -- the CLI, in process, with the toy engine standing in -------------------


@pytest.fixture
def toy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner, "real_engine_factory", lambda config=None, keys=None: sequencer_factory
    )


@pytest.mark.usefixtures("toy_engine")
def test_cli_ok_writes_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run.jsonl"
    argv = [
        "sim",
        "--nodes",
        "3",
        "--seed",
        "5",
        "--duration",
        "2",
        "--rate",
        "50",
        "--log",
        str(log),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ok: every guarantee holds" in out and "messages sent" in out
    expected = run(seed=5, nodes=3, duration=2.0, rate=50.0)
    assert log.read_bytes() == expected.log_bytes()
    assert tuple(read_log(log)) == expected.events


@pytest.mark.usefixtures("toy_engine")
def test_cli_bad_faults_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--faults", "loss=7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ringward sim: error: ") and "[sim.bad_faults]" in err


def test_cli_failure_exits_one_and_prints_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> DuplicatingEngine:
        return DuplicatingEngine(node, roster, incarnation=inc, now=now)

    monkeypatch.setattr(runner, "real_engine_factory", lambda config=None, keys=None: broken)
    assert main(["sim", "--nodes", "3", "--duration", "1", "--seed", "8"]) == 1
    out = capsys.readouterr().out
    assert "G2 no duplication" in out
    assert "reproduce: ringward sim --nodes 3 --seed 8 --duration 1 --rate 200 --faults none" in out


def test_cli_engine_exception_exits_one_with_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def raising(
        node: int, roster: tuple[int, ...], inc: int, now: float, _rs: int = 0
    ) -> RaisingEngine:
        return RaisingEngine(node, roster, incarnation=inc, now=now)

    monkeypatch.setattr(runner, "real_engine_factory", lambda config=None, keys=None: raising)
    assert main(["sim", "--nodes", "2", "--duration", "1"]) == 1
    out = capsys.readouterr().out
    assert "simulation failed: node " in out and "[sim.engine_raised]" in out
    assert "reproduce: ringward sim --nodes 2 --seed 1 --duration 1" in out


def test_log_is_identical_across_processes_and_hash_seeds() -> None:
    # Set iteration order and str hashing vary with PYTHONHASHSEED: the log
    # must not depend on either.
    script = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1])\n"
        "from sim_fake import sequencer_factory\n"
        "from ringward.sim.faults import FaultSpec\n"
        "from ringward.sim.runner import Scenario, run_scenario\n"
        "r = run_scenario(Scenario(nodes=4, seed=11, duration=2.0, "
        "faults=FaultSpec.parse(sys.argv[2])), engine_factory=sequencer_factory)\n"
        "print(hashlib.sha256(r.log_bytes()).hexdigest())\n"
    )
    here = str(Path(__file__).resolve().parents[1])  # tests/: sim_fake
    digests = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script, here, str(EVERYTHING)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        digests.add(out.stdout.strip())
    local = hashlib.sha256(run(seed=11, duration=2.0, faults=EVERYTHING).log_bytes()).hexdigest()
    assert digests == {local}
